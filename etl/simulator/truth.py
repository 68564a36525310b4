"""Ground truth: the warehouse rows a complete crawl of the simulated EM must produce.

Built from the world's objects (not from the XML) and shaped like the contract tables; deleted
parents become placeholder rows built only from what the child's link says.
"""

from __future__ import annotations

from .clock import from_ticks, from_ticks_or_none
from .entities import RESULTS, BackupServer
from .truth_backup import build_backup_truth
from .world import World


def _none(s: str | None) -> str | None:
    return s if s else None


def build_truth(w: World, origin: str | None = None) -> dict[str, dict[str, dict]]:
    servers: dict[str, dict] = {}
    sessions: dict[str, dict] = {}
    tasks: dict[str, dict] = {}
    points: dict[str, dict] = {}

    def server_ref(s: BackupServer) -> str:
        if s.uid not in servers:
            if s.deleted:
                servers[s.uid] = {
                    "uid": s.uid,
                    "href": w.href("BackupServer", s.guid, False, origin),
                    "name": s.name,
                    "description": None,
                    "port": None,
                    "version": None,
                    "wcf_port": None,
                    "vbr_certificate_thumbprint": None,
                    "placeholder": True,
                }
            else:
                servers[s.uid] = {
                    "uid": s.uid,
                    "href": w.href("BackupServer", s.guid, True, origin),
                    "name": s.name,
                    "description": _none(s.description),
                    "port": s.port,
                    "version": s.version,
                    "wcf_port": s.wcf_port,
                    "vbr_certificate_thumbprint": s.thumbprint,
                    "placeholder": False,
                }
        return s.uid

    for s in w.visible_servers():
        server_ref(s)

    for js in w.job_sessions:
        state, result, progress, end = w.js_state(js)
        sessions[js.uid] = {
            "uid": js.uid,
            "href": w.href("ReplicaJobSession", js.guid, True, origin),
            "backup_server_uid": server_ref(js.job.server),
            "job_uid": f"urn:veeam:Job:{js.job.guid}",
            "job_name": js.job.name,
            "job_type": "Replica",
            "name": js.name,
            "creation_time_utc": from_ticks(js.start),
            "end_time_utc": from_ticks_or_none(end),
            "state": state,
            "result": "None" if result is None else RESULTS[result],
            "progress": progress,
            "is_retry": js.is_retry,
            "failure_message": js.failure if end is not None else None,
            "placeholder": False,
        }

    for t in w.tasks:
        state, result, end = w.task_state(t)
        p = w.related_point(t)
        tasks[t.uid] = {
            "uid": t.uid,
            "href": w.href("ReplicaTaskSession", t.guid, True, origin),
            "job_session_uid": t.js.uid,
            "backup_server_uid": server_ref(t.js.job.server),
            "replica_point_uid": None if p is None else p.uid,
            "name": t.name,
            "vm_display_name": t.vm_name,
            "creation_time_utc": from_ticks(t.created),
            "end_time_utc": from_ticks_or_none(end),
            "state": state,
            "result": "None" if result is None else RESULTS[result],
            "reason": _none(t.reason) if end is not None else None,
            "total_size": t.js.job.vms[t.vm][2],
        }
        if p is not None and p.guid not in w.index["VmReplicaPoint"]:  # deleted, or removed by retention
            href = w.href("VmReplicaPoint", p.guid, True, origin)
            guid = href.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            points[p.uid] = {
                "uid": f"urn:veeam:VmReplicaPoint:{guid}",
                "href": href,
                "backup_server_uid": None,
                "replica_uid": None,
                "name": p.name,
                "vm_display_name": None,
                "vm_name": None,
                "creation_time_utc": None,
                "algorithm": None,
                "point_type": None,
                "placeholder": True,
            }

    for p in w.points:
        t = p.task
        job = t.js.job
        vm = job.vms[t.vm]
        replica = w.backup.replica_of[job.guid]
        points[p.uid] = {
            "uid": p.uid,
            "href": w.href("VmReplicaPoint", p.guid, True, origin),
            "backup_server_uid": server_ref(job.server),
            "replica_uid": replica.uid,
            "name": p.name,
            "vm_display_name": vm[0],
            "vm_name": vm[0] if w.quirks.vm_name else None,
            "creation_time_utc": from_ticks(p.created),
            "algorithm": p.algorithm,
            "point_type": p.point_type,
            "placeholder": False,
        }

    backup = build_backup_truth(w, origin, server_ref)
    return {
        "backup_servers": servers,
        "replica_job_sessions": sessions,
        "replica_task_sessions": tasks,
        "vm_replica_points": points,
        **backup,
    }
