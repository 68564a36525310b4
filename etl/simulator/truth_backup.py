"""Ground truth of the backup side: the rows a complete crawl at `now` leaves in the warehouse tables.
Parents EM answers 404 for become placeholders built from the child's reference only; a task without
a `Related` link gets its point by inference (`vm_restore_point_link='inferred'`) while it is listed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .backup import href
from .clock import from_ticks, from_ticks_or_none
from .entities import RESULTS, BackupServer

if TYPE_CHECKING:
    from .world import World

RETENTION_TABLES = (
    "restore_points",
    "vm_restore_points",
    "agent_restore_points",
    "backup_files",
    "backups",
    "replicas",
    "vm_replica_points",
)


def _none(s: str | None) -> str | None:
    return s if s else None


def build_backup_truth(
    w: World, origin: str | None, server_ref: Callable[[BackupServer], str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Tables of the backup side; `server_ref(server) -> uid` records backup servers (and their
    placeholders) in the caller's table."""
    b = w.backup
    base = (w.quirks.public_origin or origin or w.origin).rstrip("/") + "/api"
    jobs: dict[str, dict] = {}
    sessions: dict[str, dict] = {}
    tasks: dict[str, dict] = {}
    repos: dict[str, dict] = {}
    backups: dict[str, dict] = {}
    rps: dict[str, dict] = {}
    vrps: dict[str, dict] = {}
    arps: dict[str, dict] = {}
    files: dict[str, dict] = {}
    replicas: dict[str, dict] = {}

    for job in b.jobs + b.agent_jobs + b.nas_jobs:
        uid = f"urn:veeam:Job:{job.guid}"
        jobs[uid] = {
            "uid": uid,
            "href": href(w, job.kind, job.guid, True, origin),
            "backup_server_uid": server_ref(job.server),
            "name": job.name,
            "job_type": job.job_type,
            "platform": job.platform,
            "description": _none(job.description),
            "schedule_configured": job.sched_configured,
            "schedule_enabled": job.sched_enabled,
            "next_run_utc": from_ticks_or_none(b.next_run(job)),
            "placeholder": False,
        }

    for js in b.sessions:
        job_uid = f"urn:veeam:Job:{js.job_guid}"
        if job_uid not in jobs:  # a worker or per-computer job: EM answers 404, the link names it
            jobs[job_uid] = {
                "uid": job_uid,
                "href": f"{base}/{js.job_seg}/{js.job_guid}",
                "backup_server_uid": None,
                "name": js.job_name,
                "job_type": None,
                "platform": None,
                "description": None,
                "schedule_configured": None,
                "schedule_enabled": None,
                "next_run_utc": None,
                "placeholder": True,
            }
        state, result, progress, end = b.js_state(js)
        sessions[js.uid] = {
            "uid": js.uid,
            "href": href(w, "BackupJobSession", js.guid, True, origin),
            "backup_server_uid": server_ref(js.server),
            "job_uid": job_uid,
            "parent_session_uid": None if js.parent is None else js.parent.uid,
            "job_name": js.job_name,
            "job_type": js.job_type,
            "name": js.name,
            "creation_time_utc": from_ticks(js.start),
            "end_time_utc": from_ticks_or_none(end),
            "state": state,
            "result": "None" if result is None else RESULTS[result],
            "progress": progress,
            "is_retry": js.is_retry,
            "failure_message": _none(js.failure) if end is not None else None,
            "placeholder": False,
        }

    listed_vrps = b.index["VmRestorePoint"]
    for t in b.tasks:
        state, result, end = b.task_state(t)
        rel = b.related_vrp(t)
        vrp_uid: str | None
        how: str | None
        if rel is not None:
            vrp_uid, how = rel.uid, "link"
            if rel.guid not in listed_vrps:  # retired: known only from the task's link
                vrps[rel.uid] = {
                    "uid": rel.uid,
                    "href": href(w, "VmRestorePoint", rel.guid, True, origin),
                    "restore_point_uid": None,
                    "backup_file_uid": None,
                    "backup_server_uid": None,
                    "name": rel.name,
                    "vm_display_name": None,
                    "vm_name": None,
                    "hierarchy_obj_ref": None,
                    "creation_time_utc": None,
                    "algorithm": None,
                    "point_type": None,
                    "placeholder": True,
                }
        elif t.vrp is not None and end is not None and t.vrp.guid in listed_vrps:
            vrp_uid, how = t.vrp.uid, "inferred"
        else:
            vrp_uid = how = None
        p = b.profile(t)
        tasks[t.uid] = {
            "uid": t.uid,
            "href": href(w, "BackupTaskSession", t.guid, True, origin),
            "job_session_uid": t.js.uid,
            "backup_server_uid": server_ref(t.js.server),
            "vm_restore_point_uid": vrp_uid,
            "vm_restore_point_link": how,
            "name": t.name,
            "vm_display_name": t.vm[0],
            "vm_uid": t.vm[1] if t.js.job.kind == "Job" and p.vm_uid else None,
            "creation_time_utc": from_ticks(t.created),
            "end_time_utc": from_ticks_or_none(end),
            "state": state,
            "result": "None" if result is None else RESULTS[result],
            "reason": _none(t.reason) if end is not None else None,
            "total_size": b.total_size(t),
        }

    for r in b.repos:
        repos[r.uid] = {
            "uid": r.uid,
            "href": href(w, "Repository", r.guid, True, origin),
            "backup_server_uid": server_ref(r.server),
            "name": r.name,
            "kind": r.rkind,
            "capacity": None if r.capacity < 0 else r.capacity,
            "free_space": None if b.free_space(r) < 0 else b.free_space(r),
            "placeholder": False,
        }

    for x in b.backups:
        backups[x.uid] = {
            "uid": x.uid,
            "href": href(w, "Backup", x.guid, True, origin),
            "backup_server_uid": server_ref(x.server),
            "repository_uid": None if x.repo is None else x.repo.uid,
            "parent_backup_uid": None if x.parent is None else x.parent.uid,
            "job_uid": None if x.job is None else f"urn:veeam:Job:{x.job.guid}",
            "name": x.name,
            "platform": x.platform,
            "backup_type": x.btype,
            "placeholder": False,
        }

    for rp in b.rps:
        rps[rp.uid] = {
            "uid": rp.uid,
            "href": href(w, "RestorePoint", rp.guid, True, origin),
            "backup_uid": rp.backup.uid,
            "backup_server_uid": server_ref(rp.backup.server),
            "name": rp.name,
            "backup_date_utc": from_ticks(rp.date),
            "placeholder": False,
        }

    for v in b.vrps:
        p = b.profile(v)
        name = v.vm[0] if p.vm_names else None
        vrps[v.uid] = {
            "uid": v.uid,
            "href": href(w, "VmRestorePoint", v.guid, True, origin),
            "restore_point_uid": v.rp.uid,
            "backup_file_uid": v.file.uid if v.file is not None and p.file_link else None,
            "backup_server_uid": server_ref(v.rp.backup.server),
            "name": v.name,
            "vm_display_name": name,
            "vm_name": name,
            "hierarchy_obj_ref": v.vm[1],
            "creation_time_utc": from_ticks(v.created),
            "algorithm": v.algorithm,
            "point_type": v.point_type,
            "placeholder": False,
        }

    for a in b.arps:
        arps[a.uid] = {
            "uid": a.uid,
            "href": href(w, "AgentRestorePoint", a.guid, True, origin),
            "restore_point_uid": a.rp.uid,
            "backup_file_uid": a.file.uid,
            "backup_server_uid": server_ref(a.rp.backup.server),
            "name": a.name,
            "computer_name": a.comp[0],
            "creation_time_utc": from_ticks(a.created),
            "algorithm": a.algorithm,
            "point_type": a.point_type,
            "placeholder": False,
        }

    for f in b.files:
        files[f.uid] = {
            "uid": f.uid,
            "href": href(w, "BackupFile", f.guid, True, origin),
            "backup_uid": f.backup.uid,
            "backup_server_uid": server_ref(f.backup.server),
            "name": f.name,
            "file_path": f.path,
            "file_type": f.ftype,
            "backup_size": f.backup_size,
            "data_size": f.data_size,
            "deduplication_ratio": float(f.dedup),
            "compress_ratio": float(f.compress),
            "creation_time_utc": from_ticks(f.created),
            "placeholder": False,
        }

    for rep in b.replicas:
        replicas[rep.uid] = {
            "uid": rep.uid,
            "href": href(w, "Replica", rep.guid, True, origin),
            "backup_server_uid": server_ref(rep.server),
            "repository_uid": rep.repo.uid,
            "job_uid": rep.job.uid,
            "name": rep.name,
            "platform": rep.platform,
            "placeholder": False,
        }

    return {
        "jobs": jobs,
        "backup_job_sessions": sessions,
        "backup_task_sessions": tasks,
        "repositories": repos,
        "backups": backups,
        "restore_points": rps,
        "vm_restore_points": vrps,
        "agent_restore_points": arps,
        "backup_files": files,
        "replicas": replicas,
    }


def deleted(truth: dict[str, dict[str, dict]]) -> dict[str, set[str]]:
    """{table: uids} of the rows of `truth` that EM no longer lists (a retention sweep marks them
    `deleted_at`): the placeholders of the tables retention applies to."""
    return {
        table: {uid for uid, row in truth.get(table, {}).items() if row.get("placeholder")}
        for table in RETENTION_TABLES
    }
