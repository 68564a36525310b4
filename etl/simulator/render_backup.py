"""XML of the backup-side entities and references, after the examples in em-backup-side.md: link
Rel/Type pairs and child order follow the recorded examples; older backup servers mistype the list
links and omit links and elements as `backup.Profile` says. Cached like render.py's (per GUID).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from .backup import SEGMENT
from .clock import fmt_ts, fmt_ts_or_none, local_time_of_day
from .entities import (
    RESULTS,
    AgentBackupJob,
    AgentRestorePoint,
    Backup,
    BackupEntity,
    BackupFile,
    BackupJobSession,
    BackupServer,
    BackupTaskSession,
    Job,
    NasJob,
    RestorePoint,
    VmRestorePoint,
)
from .world import new_guid

if TYPE_CHECKING:
    from .render import Renderer

Rng = random.Random | None  # shuffles attributes (quirks.shuffle_attributes), else None

_ATTR = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}

PLURAL = {
    "Job": "Jobs",
    "AgentBackupJob": "AgentBackupJob",  # singular wrapper, as EM's JSON clients read it (spec §10)
    "NasJob": "NasJobs",  # no recording shows it: the plural of the type, EM's usual rule
    "BackupJobSession": "BackupJobSessions",
    "BackupTaskSession": "BackupTaskSessions",
    "Repository": "Repositories",
    "Backup": "Backups",
    "RestorePoint": "RestorePoints",
    "VmRestorePoint": "VmRestorePoints",
    "AgentRestorePoint": "AgentRestorePoints",
    "BackupFile": "BackupFiles",
    "Replica": "Replicas",
}
# Element names that are not the `Type` (em-samples/nas-job-entity.xml: `<NASJob Type="NasJob">`).
TAGS = {"NasJob": "NASJob"}
DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def attrs(pairs: list[tuple[str, str]], rng: random.Random | None = None) -> str:
    if rng is not None:
        pairs = list(pairs)
        rng.shuffle(pairs)
    return "".join(f' {k}="{escape(v, _ATTR)}"' for k, v in pairs)


def ref_type(kind: str) -> str:
    """`Type` of an object's reference form."""
    return "JobReference" if kind == "AgentBackupJob" else kind + "Reference"


def _href(r: Renderer, kind: str, guid: str, entity: bool = False) -> str:
    return f"{r.api}/{SEGMENT[kind]}/{guid}" + ("?format=Entity" if entity else "")


def _lk(r: Renderer, rel: str, typ: str | None, href: str, name: str | None = None, rng: Rng = None) -> str:
    pairs = [("Rel", rel)]
    if typ is not None:
        pairs.append(("Type", typ))
    pairs.append(("Href", href))
    if name is not None:
        pairs.append(("Name", name))
    return f"<{r.p}Link{attrs(pairs, rng)} />"


def _server_link(r: Renderer, s: BackupServer, rng: Rng) -> str:
    return _lk(r, "Up", "BackupServerReference", r.href("BackupServer", s.guid, False), s.name, rng)


def _bool(v: bool) -> str:
    return "true" if v else "false"


# ---------------------------------------------------------------------- links per kind
def _entity_links(r: Renderer, o: BackupEntity, rng: Rng, single: bool = False) -> list[str]:
    kind, api, w = o.kind, r.api, r.w
    b = w.backup
    me = _href(r, kind, o.guid)
    if o.kind == "Job":
        items = [_server_link(r, o.server, rng), _lk(r, "Alternate", "JobReference", me, o.name, rng)]
        if o.job_type in ("Backup", "Replica"):
            items += [
                _lk(r, "Edit", "JobReference", me, o.name, rng),
                _lk(r, "Clone", None, me + "?action=clone", None, rng),
                _lk(r, "ToggleScheduleEnabled", None, me + "?action=toggleScheduleEnabled", None, rng),
                _lk(r, "Down", "ObjectInJobList", me + "/includes", None, rng),
                _lk(r, "Down", "BackupJobSessionReferenceList", me + "/backupSessions", None, rng),
                _lk(r, "Create", "ObjectInJob", me + "/includes", None, rng),
                _lk(r, "Start", None, me + "?action=start", None, rng),
                _lk(r, "Stop", None, me + "?action=stop", None, rng),
                _lk(r, "Retry", None, me + "?action=retry", None, rng),
            ]
        else:
            items += [
                _lk(r, "Clone", None, me + "?action=clone", None, rng),
                _lk(r, "ToggleScheduleEnabled", None, me + "?action=toggleScheduleEnabled", None, rng),
                _lk(r, "Down", "BackupJobSessionReferenceList", me + "/backupSessions", None, rng),
                _lk(r, "Sync", None, me + "?action=sync", None, rng),
                _lk(r, "Down", "LinkedJobObjectList", me + "/linkedJobs", None, rng),
                _lk(
                    r, "Down", "LinkedBackupRepositoryObjectList", me + "/linkedBackupRepositories", None, rng
                ),
                _lk(r, "Create", "LinkedJobObject", me + "/linkedJobs", None, rng),
                _lk(r, "Create", "LinkedBackupRepositoryObject", me + "/linkedBackupRepositories", None, rng),
            ]
        return items
    if o.kind == "AgentBackupJob":
        return [
            _server_link(r, o.server, rng),
            _lk(r, "Alternate", "JobReference", me, o.name, rng),
            _lk(r, "Down", "ObjectInJobList", me + "/includes", None, rng),
            _lk(r, "ToggleScheduleEnabled", None, me + "?action=toggleScheduleEnabled", None, rng),
            _lk(r, "Down", "BackupJobSessionReferenceList", me + "/backupSessions", None, rng),
            _lk(r, "Start", None, me + "?action=start", None, rng),
            _lk(r, "Stop", None, me + "?action=stop", None, rng),
            _lk(r, "Retry", None, me + "?action=retry", None, rng),
        ]
    if o.kind == "NasJob":  # em-samples/nas-job-entity.xml
        return [
            _server_link(r, o.server, rng),
            _lk(r, "Alternate", "JobReference", me, o.name, rng),
            _lk(r, "Down", "NasObjectList", me + "/includes", None, rng),
            _lk(r, "Down", "BackupJobSessionReferenceList", me + "/backupSessions", None, rng),
        ]
    if o.kind == "BackupJobSession":
        items = _session_ups(r, o, rng)
        items.append(_lk(r, "Alternate", "BackupJobSessionReference", me, o.name, rng))
        # an agent parent session's second Alternate, to its per-computer sessions: in the single GET
        # (em-backup-side.md §10), not in a query result (em-samples/query-agent-job-sessions.xml)
        if o.children and single:
            items.append(
                _lk(
                    r,
                    "Alternate",
                    "BackupJobSessionReferenceList",
                    me + "/agentManagementSessions",
                    None,
                    rng,
                )
            )
        items.append(_lk(r, "Down", "BackupTaskSessionReferenceList", me + "/taskSessions", None, rng))
        items.append(_lk(r, "Stop", None, me + "?action=stop", None, rng))
        for rp in b.related_rps(o):
            items.append(
                _lk(r, "Related", "RestorePointReference", _href(r, "RestorePoint", rp.guid), rp.name, rng)
            )
        return items
    if o.kind == "BackupTaskSession":
        items = _task_ups(r, o, rng)
        items.append(_lk(r, "Alternate", "BackupTaskSessionReference", me, o.name, rng))
        v = b.related_vrp(o)
        if v is not None:
            items.append(
                _lk(r, "Related", "VmRestorePoint", _href(r, "VmRestorePoint", v.guid, True), v.name, rng)
            )
        return items
    if o.kind == "Repository":
        return [
            _server_link(r, o.server, rng),
            _lk(r, "Alternate", "RepositoryReference", me, o.name, rng),
            _lk(r, "Down", "BackupReferenceList", me + "/backups", None, rng),
            _lk(r, "Down", "ReplicaReferenceList", me + "/replicas", None, rng),
        ]
    if o.kind == "Backup":
        items = _backup_ups(r, o, rng)
        items.append(_lk(r, "Alternate", "BackupReference", me, o.name, rng))
        if o.btype == "ParentBackup":
            items.append(_lk(r, "Down", "BackupList", me + "/childbackups?format=Entity", None, rng))
        else:
            items.append(_lk(r, "Down", "RestorePointReferenceList", me + "/restorePoints", None, rng))
            items.append(_lk(r, "Down", "BackupFileReferenceList", me + "/backupFiles", None, rng))
        if o.parent is not None:
            items.append(
                _lk(r, "Up", "Backup", _href(r, "Backup", o.parent.guid, True), "Parent Backup", rng)
            )
        return items
    if o.kind == "RestorePoint":
        p = b.profile(o)
        items = _rp_ups(r, o, rng)
        items.append(_lk(r, "Alternate", "RestorePointReference", me, o.name, rng))
        if not p.typed_lists:  # the 2016 shape still links the VM restore points
            items.append(_lk(r, "Down", "VmRestorePointReferenceList", me + "/vmRestorePoints", None, rng))
        items.append(_lk(r, "Down", "VAppRestorePointReferenceList", me + "/vAppRestorePoints", None, rng))
        typ = "BackupFileReferenceList" if p.typed_lists else "RestorePointReferenceList"
        items.append(_lk(r, "Related", typ, me + "/backupFiles", None, rng))
        return items
    if o.kind == "VmRestorePoint":
        items = [_lk(r, "Restore", None, me + "?action=restore", None, rng)]
        items += _vrp_ups(r, o, rng)
        items.append(_lk(r, "Alternate", "VmRestorePointReference", me, o.name, rng))
        items.append(_lk(r, "Down", "VmRestorePointMountList", me + "/mounts", None, rng))
        items.append(_lk(r, "Create", "VmRestorePointMount", me + "/mounts", None, rng))
        return items
    if o.kind == "AgentRestorePoint":  # em-samples/query-agent-restore-points.xml
        items = _arp_ups(r, o, rng)
        items.append(_lk(r, "Alternate", "AgentRestorePointReference", me, o.name, rng))
        return items
    if o.kind == "BackupFile":
        p = b.profile(o)
        items = _file_ups(r, o, rng)
        items.append(_lk(r, "Alternate", "BackupFileReference", me, o.name, rng))
        typ = "RestorePointReferenceList" if p.typed_lists else "BackupFileReferenceList"
        items.append(_lk(r, "Related", typ, me + "/restorePoints", None, rng))
        items.append(_lk(r, "Down", "VmRestorePointReferenceList", me + "/vmRestorePoints", None, rng))
        return items
    # Replica
    return [
        _lk(r, "Up", "RepositoryReference", _href(r, "Repository", o.repo.guid), o.repo.name, rng),
        _server_link(r, o.server, rng),
        _lk(r, "Alternate", "ReplicaReference", me, o.name, rng),
        _lk(r, "Down", "VmReplicaPointReferenceList", f"{api}/replicas/{o.guid}/vmReplicaPoints", None, rng),
    ]


def _session_ups(r: Renderer, o: BackupJobSession, rng: Rng) -> list[str]:
    items = [
        _server_link(r, o.server, rng),
        _lk(r, "Up", "JobReference", f"{r.api}/{o.job_seg}/{o.job_guid}", o.job_name, rng),
    ]
    if o.parent is not None:
        items.append(
            _lk(
                r,
                "Up",
                "BackupJobSessionReference",
                _href(r, "BackupJobSession", o.parent.guid),
                "Parent session",
                rng,
            )
        )
    return items


def _task_ups(r: Renderer, o: BackupTaskSession, rng: Rng) -> list[str]:
    js = o.js
    return [
        _server_link(r, js.server, rng),
        _lk(r, "Up", "BackupJobSessionReference", _href(r, "BackupJobSession", js.guid), js.name, rng),
    ]


def _backup_ups(r: Renderer, o: Backup, rng: Rng) -> list[str]:
    if o.repo is None:  # an imported backup has no repository link (em-api.md)
        return [_server_link(r, o.server, rng)]
    return [
        _lk(r, "Up", "RepositoryReference", _href(r, "Repository", o.repo.guid), o.repo.name, rng),
        _server_link(r, o.server, rng),
    ]


def _rp_ups(r: Renderer, o: RestorePoint, rng: Rng) -> list[str]:
    return [
        _lk(r, "Up", "BackupReference", _href(r, "Backup", o.backup.guid), o.backup.name, rng),
        _server_link(r, o.backup.server, rng),
    ]


def _vrp_ups(r: Renderer, o: VmRestorePoint, rng: Rng) -> list[str]:
    rp = o.rp
    items = [
        _server_link(r, rp.backup.server, rng),
        _lk(r, "Up", "RestorePointReference", _href(r, "RestorePoint", rp.guid), rp.name, rng),
    ]
    if o.file is not None and r.w.backup.profile(o).file_link:
        items.append(
            _lk(r, "Up", "BackupFileReference", _href(r, "BackupFile", o.file.guid), o.file.name, rng)
        )
    return items


def _arp_ups(r: Renderer, o: AgentRestorePoint, rng: Rng) -> list[str]:
    rp = o.rp
    return [
        _server_link(r, rp.backup.server, rng),
        _lk(r, "Up", "RestorePointReference", _href(r, "RestorePoint", rp.guid), rp.name, rng),
        _lk(r, "Up", "BackupFileReference", _href(r, "BackupFile", o.file.guid), o.file.name, rng),
    ]


def _file_ups(r: Renderer, o: BackupFile, rng: Rng) -> list[str]:
    return [
        _lk(r, "Up", "BackupReference", _href(r, "Backup", o.backup.guid), o.backup.name, rng),
        _server_link(r, o.backup.server, rng),
    ]


def _ref_links(r: Renderer, o: BackupEntity, rng: Rng) -> list[str]:
    """Links of the reference form: the parents, then `Alternate` to the entity."""
    kind = o.kind
    me = _href(r, kind, o.guid, True)
    if o.kind == "NasJob":  # em-samples/nas-job-reference.xml: Alternate typed "Job", then the sessions
        return [
            _server_link(r, o.server, rng),
            _lk(r, "Alternate", "Job", me, o.name, rng),
            _lk(
                r,
                "Down",
                "BackupJobSessionReferenceList",
                _href(r, kind, o.guid) + "/backupSessions",
                None,
                rng,
            ),
        ]
    if o.kind == "BackupJobSession":
        items = _session_ups(r, o, rng)
        items.append(_lk(r, "Alternate", "BackupJobSession", me, o.name, rng))
        items.append(
            _lk(
                r,
                "Down",
                "BackupTaskSessionReferenceList",
                _href(r, kind, o.guid) + "/taskSessions",
                None,
                rng,
            )
        )
        return items
    if o.kind == "BackupTaskSession":
        items = _task_ups(r, o, rng)
    elif o.kind == "Backup":
        items = _backup_ups(r, o, rng)
    elif o.kind == "RestorePoint":
        items = _rp_ups(r, o, rng)
    elif o.kind == "VmRestorePoint":
        items = _vrp_ups(r, o, rng)
    elif o.kind == "AgentRestorePoint":
        items = _arp_ups(r, o, rng)
    elif o.kind == "BackupFile":
        items = _file_ups(r, o, rng)
    elif o.kind == "Replica":
        items = [
            _lk(r, "Up", "RepositoryReference", _href(r, "Repository", o.repo.guid), o.repo.name, rng),
            _server_link(r, o.server, rng),
        ]
    else:
        items = [_server_link(r, o.server, rng)]
    items.append(_lk(r, "Alternate", kind, me, o.name, rng))
    return items


# ---------------------------------------------------------------------- fields per kind
def _schedule(r: Renderer, o: Job | AgentBackupJob) -> str:
    el, p = r.el, r.p
    if o.kind == "Job" and o.job_type not in ("Backup", "Replica"):
        days = "".join(f'<{p}Day Name="{d}">{",".join("1" * 24)}</{p}Day>' for d in DAYS)
        return (
            f'<{p}JobScheduleOptions><{p}ImmediateCopyMode><{p}OptionsContinuous Enabled="true">'
            f"<{p}Schedule>{days}</{p}Schedule></{p}OptionsContinuous></{p}ImmediateCopyMode>"
            f"</{p}JobScheduleOptions>"
        )
    tz = r.w.backup.profiles[o.server.idx].tz
    first = r.w.t0 + (o.repl.offset if o.kind == "Job" and o.repl is not None else o.offset)
    return (
        f"<{p}JobScheduleOptions><{p}Standart><{p}RetryOptions>"
        + el("RetryTimes", "3")
        + el("RetryTimeout", "10")
        + el("RetrySpecified", "true")
        + f'</{p}RetryOptions><{p}OptionsDaily Enabled="{_bool(o.sched_configured)}">'
        + el("Kind", "Everyday")
        + "".join(el("Days", d) for d in DAYS)
        + el("Time", local_time_of_day(first, tz))
        + el("TimeOffsetUtc", str(tz))
        + f"</{p}OptionsDaily></{p}Standart></{p}JobScheduleOptions>"
    )


def _object_id(job_guid: str, i: int) -> str:
    return new_guid(random.Random(f"{job_guid}:include:{i}"))


def _job_info(r: Renderer, o: Job | AgentBackupJob) -> str:
    el, p, me = r.el, r.p, _href(r, o.kind, o.guid)
    retention = (
        f"<{p}SimpleRetentionPolicy>"
        + el("RetainCycles", str(getattr(o, "retain", 7)))
        + el("RetainDaysToKeep", "7")
        + el("RetainLimitType", "Cycles")
        + f"</{p}SimpleRetentionPolicy>"
    )
    if o.kind == "AgentBackupJob":
        inc = "".join(
            f'<{p}ObjectInAgentBackupJob Type="ObjectInAgentBackupJob" Href="{me}/includes/{_object_id(o.guid, i)}">'
            + el("ObjectInJobId", _object_id(o.guid, i))
            + el("Name", c[0])
            + el("DisplayName", c[0])
            + f"</{p}ObjectInAgentBackupJob>"
            for i, c in enumerate(o.computers)
        )
        return f"<{p}JobInfo><{p}Includes>{inc}</{p}Includes>{retention}</{p}JobInfo>"
    if o.job_type in ("Backup", "Replica"):
        inc = "".join(
            f'<{p}ObjectInJob Type="ObjectInJob" Href="{me}/includes/{_object_id(o.guid, i)}">'
            + el("ObjectInJobId", _object_id(o.guid, i))
            + el("HierarchyObjRef", vm[1])
            + el("Name", vm[0])
            + el("DisplayName", vm[0])
            + f"</{p}ObjectInJob>"
            for i, vm in enumerate(o.vms)
        )
        info = "BackupJobInfo" if o.job_type == "Backup" else "ReplicaJobInfo"
        return f"<{p}JobInfo><{p}{info}><{p}Includes>{inc}</{p}Includes>{retention}</{p}{info}></{p}JobInfo>"
    info = "ImmediateBackupCopyJobInfo" if o.job_type == "ImmediateBackupCopy" else "BackupCopyJobInfo"
    linked = (
        f"<{p}LinkedJobIncludes><{p}LinkedJobObject>"
        + el("ObjectInJobId", _object_id(o.guid, 0))
        + el("LinkedJobUid", o.source.uid if o.source is not None else None)
        + f"</{p}LinkedJobObject></{p}LinkedJobIncludes>"
    )
    return (
        f"<{p}JobInfo><{p}{info}>{linked}<{p}LinkedBackupIncludes /><{p}LinkedBackupRepositoryIncludes />"
        f"</{p}{info}></{p}JobInfo>"
    )


def _nas_includes(r: Renderer, o: NasJob) -> str:
    """`Includes` of a NasJob: one `NASObject` per file share (em-samples/nas-job-entity.xml)."""
    p, me = r.p, _href(r, o.kind, o.guid)
    shares = "".join(
        f'<{p}NASObject Type="NasObject" Href="{me}/includes/{obj_id}">'
        + r.el("HierarchyObjRef", f"urn:NasBackup:BackupServer:{server_ref}")
        + r.el("ObjectInJobId", obj_id)
        + r.el("FileOrFolder", path)
        + f"</{p}NASObject>"
        for obj_id, server_ref, path in o.shares
    )
    return f"<{p}Includes>{shares}</{p}Includes>"


def _fields(r: Renderer, o: BackupEntity) -> str:
    el, b = r.el, r.w.backup
    if o.kind == "NasJob":  # no JobType, Platform, schedule options or job info
        return (
            el("Description", o.description)
            + _nas_includes(r, o)
            + el("ScheduleConfigured", _bool(o.sched_configured))
            + el("ScheduleEnabled", _bool(o.sched_enabled))
            + el("NextRun", fmt_ts_or_none(b.next_run(o), 0))
        )
    if o.kind == "Job" or o.kind == "AgentBackupJob":
        nxt = b.next_run(o)
        return (
            el("JobType", o.job_type)
            + el("Platform", o.platform)
            + el("Description", o.description)
            + el("ScheduleConfigured", _bool(o.sched_configured))
            + el("ScheduleEnabled", _bool(o.sched_enabled))
            + el("NextRun", fmt_ts_or_none(nxt, 0))
            + _schedule(r, o)
            + _job_info(r, o)
        )
    if o.kind == "BackupJobSession":
        state, result, progress, end = b.js_state(o)
        return (
            el("JobUid", f"urn:veeam:Job:{o.job_guid}")
            + el("JobName", o.job_name)
            + el("JobType", o.job_type)
            + el("CreationTimeUTC", fmt_ts(o.start, o.prec))
            + el("EndTimeUTC", fmt_ts_or_none(end, o.prec))
            + el("State", state)
            + el("Result", "None" if result is None else RESULTS[result])
            + el("Progress", str(progress))
            + el("FailureMessage", o.failure if end is not None else None)
            + el("IsRetry", _bool(o.is_retry))
        )
    if o.kind == "BackupTaskSession":
        state, result, end = b.task_state(o)
        vm_uid = o.vm[1] if o.js.job.kind == "Job" and b.profile(o).vm_uid else None
        return (
            el("JobSessionUid", o.js.uid)
            + el("CreationTimeUTC", fmt_ts(o.created, o.prec))
            + el("EndTimeUTC", fmt_ts_or_none(end, o.prec))
            + el("State", state)
            + el("Result", "None" if result is None else RESULTS[result])
            + el("Reason", o.reason if end is not None else "")
            + el("TotalSize", str(b.total_size(o)))
            + el("VmUid", vm_uid)
        )
    if o.kind == "Repository":
        return el("Capacity", str(o.capacity)) + el("FreeSpace", str(b.free_space(o))) + el("Kind", o.rkind)
    if o.kind == "Backup":
        return el("Platform", o.platform) + el("BackupType", o.btype)
    if o.kind == "RestorePoint":
        return el("BackupDateUTC", fmt_ts(o.date, o.prec))
    if o.kind == "VmRestorePoint":
        return (
            el("CreationTimeUTC", fmt_ts(o.created, o.prec))
            + el("VmName", o.vm[0] if b.profile(o).vm_names else None)
            + el("Algorithm", o.algorithm)
            + el("PointType", o.point_type)
            + el("HierarchyObjRef", o.vm[1])
        )
    if o.kind == "AgentRestorePoint":
        return (
            el("CreationTimeUTC", fmt_ts(o.created, o.prec))
            + el("Algorithm", o.algorithm)
            + el("PointType", o.point_type)
        )
    if o.kind == "BackupFile":
        return (
            el("FilePath", o.path)
            + el("BackupSize", str(o.backup_size))
            + el("DataSize", str(o.data_size))
            + el("DeduplicationRatio", o.dedup)
            + el("CompressRatio", o.compress)
            + el("CreationTimeUtc", fmt_ts(o.created, o.prec))
            + el("FileType", o.ftype)
        )
    return el("Platform", o.platform)  # Replica


def _root_attrs(r: Renderer, o: BackupEntity, entity: bool, rng: Rng) -> str:
    kind = o.kind
    pairs = [
        ("Type", kind if entity else ref_type(kind)),
        ("Href", _href(r, kind, o.guid, entity)),
        ("Name", o.name),
        ("UID", o.uid),
    ]
    if entity and (
        o.kind == "BackupTaskSession" or o.kind == "VmRestorePoint" and r.w.backup.profile(o).vm_names
    ):
        pairs.insert(3, ("VmDisplayName", o.vm[0]))
    return attrs(pairs, rng)


def entity_piece(r: Renderer, o: BackupEntity, single: bool = False) -> bytes:
    """`' attrs><Links>…</Links>fields'` of a backup-side object (cached per guid); `single`: as a
    GET of the entity itself answers it, rather than a query or a collection."""
    single = single and o.kind == "BackupJobSession" and bool(o.children)
    cache = r._one if single else r._ent
    piece = cache.get(o.guid)
    if piece is None:
        rng = r._rng(o.guid)
        piece = (
            _root_attrs(r, o, True, rng)
            + ">"
            + r.links(_entity_links(r, o, rng, single))
            + _fields(r, o)
            + r._extra(o.guid)
        ).encode()
        cache[o.guid] = piece
    return piece


def ref_piece(r: Renderer, o: BackupEntity) -> bytes:
    piece = r._ref.get(o.guid)
    if piece is None:
        rng = r._rng(o.guid)
        piece = (_root_attrs(r, o, False, rng) + ">" + r.links(_ref_links(r, o, rng))).encode()
        r._ref[o.guid] = piece
    return piece
