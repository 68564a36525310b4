"""Query-service parameters of the backup-side types, exactly the documented ones (em-backup-side.md,
"Query service" of each type); `uid` compares the GUID part, so a bare GUID and any
`urn:veeam:<Type>:` prefix select the same object (tdewin filters with a bare GUID, the docs a urn).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .backup import SESSION_STATES, server_of
from .entities import BackupEntity

if TYPE_CHECKING:
    from .query import Param, ParamKind, Params
    from .world import World

TYPES = {
    "job": "Job",
    "agentbackupjob": "AgentBackupJob",
    "nasjob": "NasJob",
    "backupjobsession": "BackupJobSession",
    "backuptasksession": "BackupTaskSession",
    "repository": "Repository",
    "backup": "Backup",
    "restorepoint": "RestorePoint",
    "vmrestorepoint": "VmRestorePoint",
    "agentrestorepoint": "AgentRestorePoint",
    "backupfile": "BackupFile",
    "replica": "Replica",
}
KINDS = frozenset(TYPES.values())
# Enums as documented per type (em-backup-side.md); written bare in filters, compared by index and
# by name without regard to case (so `Platform==HyperV` also finds `Hyperv`).
JOB_TYPES = ("Backup", "BackupCopy", "ImmediateBackupCopy", "Replica")
AGENT_JOB_TYPES = ("AgentBackup",)
SESSION_JOB_TYPES = (
    "Backup",
    "BackupCopy",
    "ImmediateBackupCopy",
    "ImmediateBackupCopyWorker",
    "AgentBackup",
    "AgentManagement",
    "NasBackup",
)
JOB_PLATFORMS = ("VMware", "Hyperv", "vCloud", "CustomPlatform")
AGENT_PLATFORMS = ("AgentForLinux", "AgentForWindows")
BACKUP_PLATFORMS = ("VMware", "HyperV", "vCloud", "AgentForLinux", "AgentForWindows", "CustomPlatform")
BACKUP_TYPES = ("Standard", "ParentBackup", "ChildBackup")
FILE_TYPES = ("vbk", "vib", "vrb")
TASK_STATES = ("Pending", "InProgress", "Completed")
RESULTS = ("Success", "Warning", "Failed")
ALGORITHMS = ("Full", "Incremental", "ReversedIncremental", "SyntheticFull")
POINT_TYPES = ("Full", "Increment", "ReverseIncrement", "Snapshot")
STR, UID, INT, FLOAT, BOOL, DATE = ("str",), ("uid",), ("int",), ("float",), ("bool",), ("date",)


def _enum(names: Sequence[str]) -> ParamKind:
    return ("enum", {n.lower(): i for i, n in enumerate(names)})


def _enum_param(name: str, names: tuple[str, ...], get: Callable[[Any], str]) -> Param:
    """A filter parameter over an enum: the getter's value as its index (None when undocumented)."""
    kind = _enum(names)
    index = kind[1]
    return (name, kind, lambda o: index.get(get(o).lower()))


def _res(r: int | None) -> int:
    return -1 if r is None else r


def source(kind: str, w: World) -> Sequence[BackupEntity]:
    """The objects a query of `kind` ranges over (what EM lists now)."""
    b = w.backup
    lists: dict[str, Sequence[BackupEntity]] = {
        "Job": b.jobs,
        "AgentBackupJob": b.agent_jobs,
        "NasJob": b.nas_jobs,
        "BackupJobSession": b.sessions,
        "BackupTaskSession": b.tasks,
        "Repository": b.repos,
        "Backup": b.backups,
        "RestorePoint": b.rps,
        "VmRestorePoint": b.vrps,
        "AgentRestorePoint": b.arps,
        "BackupFile": b.files,
        "Replica": b.replicas,
    }
    return lists[kind]


def params_for(kind: str, w: World) -> Params:
    """{lower-case filter name: (canonical name, kind, getter(obj) -> comparable | None)}: among them
    `RestorePointId` on VmRestorePoint, `CreationTimeUTC` on BackupFile, `CreationTime` filtering
    RestorePoint's `BackupDateUTC`, `JobUid` on Backup and Replica, and the backup and file filters
    of AgentRestorePoint (§10)."""
    b = w.backup
    p: Params = {"uid": ("UID", STR, lambda o: o.uid), "name": ("Name", STR, lambda o: o.name)}
    srv = {
        # quirks.misread_server_filter: compared with the bare GUID as a plain string (a urn: nothing)
        "backupserveruid": (
            "BackupServerUid",
            STR if w.quirks.misread_server_filter else UID,
            lambda o: server_of(o).guid,
        ),
        "backupservername": ("BackupServerName", STR, lambda o: server_of(o).name),
    }
    if kind in ("Job", "AgentBackupJob"):
        agent = kind == "AgentBackupJob"
        p.update(
            {
                "description": ("Description", STR, lambda o: o.description),
                "jobtype": _enum_param(
                    "JobType", AGENT_JOB_TYPES if agent else JOB_TYPES, lambda o: o.job_type
                ),
                "platform": _enum_param(
                    "Platform", AGENT_PLATFORMS if agent else JOB_PLATFORMS, lambda o: o.platform
                ),
                "scheduleconfigured": ("ScheduleConfigured", BOOL, lambda o: o.sched_configured),
                "scheduleenabled": ("ScheduleEnabled", BOOL, lambda o: o.sched_enabled),
            }
        )
        if kind == "Job":
            p["nextrun"] = ("NextRun", DATE, b.next_run)
        p.update(srv)
    elif kind == "NasJob":  # as documented for Job, less what a NasJob does not have
        p.update(
            {
                "description": ("Description", STR, lambda o: o.description),
                "scheduleconfigured": ("ScheduleConfigured", BOOL, lambda o: o.sched_configured),
                "scheduleenabled": ("ScheduleEnabled", BOOL, lambda o: o.sched_enabled),
            }
        )
        p.update(srv)
    elif kind == "BackupJobSession":
        st = _enum(SESSION_STATES)[1]
        p.update(
            {
                "jobtype": _enum_param("JobType", SESSION_JOB_TYPES, lambda o: o.job_type),
                "jobuid": ("JobUid", UID, lambda o: o.job_guid),
                "jobname": ("JobName", STR, lambda o: o.job_name),
                "creationtime": ("CreationTime", DATE, lambda o: o.start),
                "endtime": ("EndTime", DATE, lambda o: b.js_state(o)[3]),
                "state": ("State", _enum(SESSION_STATES), lambda o: st[b.js_state(o)[0].lower()]),
                "result": ("Result", _enum(RESULTS), lambda o: _res(b.js_state(o)[1])),
                "isretry": ("IsRetry", BOOL, lambda o: o.is_retry),
            }
        )
        p.update(srv)
    elif kind == "BackupTaskSession":
        p.update(
            {
                "creationtime": ("CreationTime", DATE, lambda o: o.created),
                "endtime": ("EndTime", DATE, lambda o: b.task_state(o)[2]),
                "state": ("State", _enum(TASK_STATES), lambda o: TASK_STATES.index(b.task_state(o)[0])),
                "result": ("Result", _enum(RESULTS), lambda o: _res(b.task_state(o)[1])),
                "reason": ("Reason", STR, lambda o: o.reason if o.end <= o.js.server.view else ""),
                "totalsize": ("TotalSize", INT, b.total_size),
                "jobsessionuid": ("JobSessionUid", UID, lambda o: o.js.guid),
                "jobuid": ("JobUid", UID, lambda o: o.js.job_guid),
                "jobname": ("JobName", STR, lambda o: o.js.job_name),
                "vmdisplayname": ("VmDisplayName", STR, lambda o: o.vm[0]),
            }
        )
        p.update(srv)
    elif kind == "Repository":
        p.update(
            {
                "freespace": ("FreeSpace", INT, b.free_space),
                "capacity": ("Capacity", INT, lambda o: o.capacity),
            }
        )
        p.update(srv)
    elif kind == "Backup":
        p.update(
            {
                "jobuid": ("JobUid", UID, lambda o: o.job_guid),
                "jobname": ("JobName", STR, lambda o: o.job.name if o.job is not None else None),
                "repositoryuid": ("RepositoryUid", UID, lambda o: o.repo.guid if o.repo else None),
                "repositoryname": ("RepositoryName", STR, lambda o: o.repo.name if o.repo else None),
                "platform": _enum_param("Platform", BACKUP_PLATFORMS, lambda o: o.platform),
                "backuptype": _enum_param("BackupType", BACKUP_TYPES, lambda o: o.btype),
            }
        )
    elif kind == "RestorePoint":
        p.update(
            {
                "creationtime": ("CreationTime", DATE, lambda o: o.date),
                "backupuid": ("BackupUid", UID, lambda o: o.backup.guid),
                "backupname": ("BackupName", STR, lambda o: o.backup.name),
            }
        )
        p.update(srv)
    elif kind == "VmRestorePoint":
        p.update(
            {
                "creationtime": ("CreationTime", DATE, lambda o: o.created),
                "type": ("Type", _enum(POINT_TYPES), lambda o: POINT_TYPES.index(o.point_type)),
                "algorithm": ("Algorithm", _enum(ALGORITHMS), lambda o: ALGORITHMS.index(o.algorithm)),
                "restorepointid": ("RestorePointId", UID, lambda o: o.rp.guid),
                "restorepointname": ("RestorePointName", STR, lambda o: o.rp.name),
                "vmdisplayname": ("VmDisplayName", STR, lambda o: o.vm[0]),
            }
        )
        p.update(srv)
    elif kind == "AgentRestorePoint":
        p.update(
            {
                "creationtime": ("CreationTime", DATE, lambda o: o.created),
                "computername": ("ComputerName", STR, lambda o: o.comp[0]),
                "type": ("Type", _enum(POINT_TYPES), lambda o: POINT_TYPES.index(o.point_type)),
                "algorithm": ("Algorithm", _enum(ALGORITHMS), lambda o: ALGORITHMS.index(o.algorithm)),
                "restorepointid": ("RestorePointId", UID, lambda o: o.rp.guid),
                "restorepointname": ("RestorePointName", STR, lambda o: o.rp.name),
                "backupuid": ("BackupUid", UID, lambda o: o.rp.backup.guid),
                "backupname": ("BackupName", STR, lambda o: o.rp.backup.name),
                "backupfileuid": ("BackupFileUid", UID, lambda o: o.file.guid),
                "backupfilename": ("BackupFileName", STR, lambda o: o.file.name),
            }
        )
        p.update(srv)
    elif kind == "BackupFile":
        p.update(
            {
                "creationtimeutc": ("CreationTimeUTC", DATE, lambda o: o.created),
                "backupsize": ("BackupSize", INT, lambda o: o.backup_size),
                "datasize": ("DataSize", INT, lambda o: o.data_size),
                "compressratio": ("CompressRatio", FLOAT, lambda o: float(o.compress)),
                "filetype": _enum_param("FileType", FILE_TYPES, lambda o: o.ftype),
                "backupuid": ("BackupUid", UID, lambda o: o.backup.guid),
                "backupname": ("BackupName", STR, lambda o: o.backup.name),
            }
        )
        p.update(srv)
    elif kind == "Replica":
        p.update(
            {
                "jobuid": ("JobUid", UID, lambda o: o.job.guid),
                "jobname": ("JobName", STR, lambda o: o.job.name),
                "repositoryuid": ("RepositoryUid", UID, lambda o: o.repo.guid),
                "repositoryname": ("RepositoryName", STR, lambda o: o.repo.name),
            }
        )
    return p
