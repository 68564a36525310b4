"""Job sessions and task sessions, as EM calls them: one run of a replication or backup job, and one VM
(or agent computer) processed in it; read by creation time per backup server, and again until finished."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from .columns import DERIVED, KEPT, UTCDateTime, _href, _load_metadata, _placeholder, _server, _uid, metadata


def _task_outcome() -> list[Column]:
    """When a task (replication or backup) ran and how it ended: the same EM elements on both sides."""
    return [
        Column(
            "creation_time_utc",
            UTCDateTime,
            comment="When the task started (UTC). Source: EM's `CreationTimeUTC` element.",
        ),
        Column(
            "end_time_utc",
            UTCDateTime,
            comment="When the task ended (UTC); NULL while pending or in progress. Source: EM's `EndTimeUTC` element.",
        ),
        Column(
            "state",
            String(50),
            comment="As EM sent it: `Completed` means finished; anything else (`Pending`, `InProgress`, ...) is "
            "unfinished. Source: EM's `State` element.",
        ),
        Column(
            "result",
            String(50),
            comment="As EM sent it: `Success`, `Warning`, `Failed`, `None`, or a value EM did not document; not "
            "to be trusted before `state` is `Completed` (EM may already say Success). Source: EM's `Result` "
            "element.",
        ),
        Column(
            "reason",
            Text,
            comment="Why the task warned or failed, as EM wrote it (may be long); NULL when fine. Source: EM's "
            "`Reason` element.",
        ),
    ]


replica_job_sessions = Table(
    "replica_job_sessions",
    metadata,
    _uid(),
    _href(),
    _server(),
    Column(
        "job_uid",
        String(200),
        ForeignKey("jobs.uid"),
        comment="The replication job (`urn:veeam:Job:<guid>`). Source: EM's `JobUid` element.",
    ),
    Column(
        "job_name",
        String(500),
        comment="The job's name at the time of the session. Source: EM's `JobName` element.",
    ),
    Column("job_type", String(100), comment="`Replica`, as EM sent it. Source: EM's `JobType` element."),
    Column(
        "name",
        String(500),
        comment="`<job>@<start time>` as EM names the session (do not parse it). Source: EM's `Name` attribute.",
    ),
    Column(
        "creation_time_utc",
        UTCDateTime,
        comment="When the session started (UTC). Source: EM's `CreationTimeUTC` element.",
    ),
    Column(
        "end_time_utc",
        UTCDateTime,
        comment="When the session ended (UTC); NULL while it runs. Source: EM's `EndTimeUTC` element.",
    ),
    Column(
        "state",
        String(50),
        comment="As EM sent it: `Stopped` means finished; anything else (`Starting`, `Working`, "
        "`WaitingRepository`, ...) is unfinished. Source: EM's `State` element.",
    ),
    Column(
        "result",
        String(50),
        comment="As EM sent it: `Success`, `Warning`, `Failed`, `None`, or a value EM did not document; not "
        "to be trusted before `state` is `Stopped`. Source: EM's `Result` element.",
    ),
    Column("progress", Integer, comment="Percent done, 0-100. Source: EM's `Progress` element."),
    Column(
        "is_retry",
        Boolean,
        comment="True for an automatic retry of a failed run (EM links a retry to nothing). Source: EM's "
        "`IsRetry` element.",
    ),
    Column(
        "failure_message",
        Text,
        comment="EM's summary of what went wrong, when anything did. Source: EM's `FailureMessage` element.",
    ),
    _placeholder(),
    *_load_metadata(),
    comment="One run of a replication job (EM type `ReplicaJobSession`), scheduled or an automatic retry: "
    "read by creation time per backup server, and again until it has finished.",
)
# Indexes serve the reporting views and the incremental queries; every extra index slows the load.
Index(None, replica_job_sessions.c.creation_time_utc)
Index(None, replica_job_sessions.c.job_uid, replica_job_sessions.c.creation_time_utc)

replica_task_sessions = Table(
    "replica_task_sessions",
    metadata,
    _uid(),
    _href(),
    Column(
        "job_session_uid",
        String(200),
        ForeignKey("replica_job_sessions.uid"),
        nullable=False,
        comment="The job session the task belongs to. Source: EM's `JobSessionUid` element.",
    ),
    _server(),
    Column(
        "replica_point_uid",
        String(200),
        ForeignKey("vm_replica_points.uid"),
        comment="The replica point the task made; NULL when EM gives no link (not every server does). "
        "Source: EM's `Related` link of Type `VmReplicaPoint`.",
    ),
    Column(
        "name",
        String(500),
        comment="`<vm>@<start time>` as EM names the task. Source: EM's `Name` attribute.",
    ),
    Column(
        "vm_display_name",
        String(500),
        comment="Name of the VM as shown in Veeam. Source: EM's `VmDisplayName` attribute.",
    ),
    *_task_outcome(),
    Column(
        "total_size",
        BigInteger,
        comment="The size of the VM processed (its disks) in bytes, not bytes transferred (EM reports none "
        "per task); 0 on failed tasks. Source: EM's `TotalSize` element (em-backup-side.md §2).",
    ),
    *_load_metadata(),
    comment="One VM processed in one replication job session (EM type `ReplicaTaskSession`).",
)
Index(None, replica_task_sessions.c.job_session_uid)
Index(None, replica_task_sessions.c.vm_display_name, replica_task_sessions.c.creation_time_utc)
Index(None, replica_task_sessions.c.creation_time_utc)

backup_job_sessions = Table(
    "backup_job_sessions",
    metadata,
    _uid(),
    _href(),
    _server(),
    Column(
        "job_uid",
        String(200),
        ForeignKey("jobs.uid"),
        comment="The job (`urn:veeam:Job:<guid>`, agent and file-share jobs included); for an agent "
        "per-computer session, the per-computer job `<job> - <computer>` (a placeholder: EM answers 404 "
        "for it). Source: EM's `JobUid` element.",
    ),
    Column(
        "parent_session_uid",
        String(200),
        ForeignKey("backup_job_sessions.uid"),
        comment="For an agent per-computer session (`AgentManagement`): its `AgentBackup` parent session; "
        "NULL otherwise. Source: EM's `Up` link of Type `BackupJobSessionReference` (named `Parent session`).",
    ),
    Column(
        "job_name",
        String(500),
        comment="The job's name at the time of the session. Source: EM's `JobName` element.",
    ),
    Column(
        "job_type",
        String(100),
        comment="As EM sent it: `Backup`, `BackupCopy`, `ImmediateBackupCopy`, `ImmediateBackupCopyWorker`, "
        "`AgentBackup`, `AgentManagement`, `NasBackup`, ... Source: EM's `JobType` element.",
    ),
    Column(
        "name",
        String(500),
        comment="`<job>@<start time>` as EM names the session (do not parse it). Source: EM's `Name` attribute.",
    ),
    Column(
        "creation_time_utc",
        UTCDateTime,
        comment="When the session started (UTC). Source: EM's `CreationTimeUTC` element.",
    ),
    Column(
        "end_time_utc",
        UTCDateTime,
        comment="When the session ended (UTC); NULL while it runs. Source: EM's `EndTimeUTC` element.",
    ),
    Column(
        "state",
        String(50),
        comment="As EM sent it: `Stopped` means finished; anything else is unfinished (a backup copy session "
        "can stay `Working` or `Idle` for days). Source: EM's `State` element.",
    ),
    Column(
        "result",
        String(50),
        comment="As EM sent it: `Success`, `Warning`, `Failed`, `None`, or a value EM did not document; not "
        "to be trusted before `state` is `Stopped`. Source: EM's `Result` element.",
    ),
    Column(
        "progress",
        Integer,
        comment="Percent done, 0-100 (a copy parent may end at 0). Source: EM's `Progress` element.",
    ),
    Column(
        "is_retry",
        Boolean,
        comment="True for an automatic retry (EM links a retry to nothing; `v_backup_job_runs` folds it into "
        "the run it follows). Source: EM's `IsRetry` element.",
    ),
    Column(
        "failure_message",
        Text,
        comment="EM's summary of what went wrong, when anything did. Source: EM's `FailureMessage` element.",
    ),
    _placeholder(),
    *_load_metadata(),
    comment="One run (attempt) of a backup, backup copy, agent or file-share job (EM type `BackupJobSession`): "
    "scheduled, an automatic retry, or an agent per-computer session under its parent; read by creation "
    "time per backup server, and again until it has finished. `v_backup_job_runs` folds retries into runs.",
)
Index(None, backup_job_sessions.c.creation_time_utc)
Index(None, backup_job_sessions.c.job_uid, backup_job_sessions.c.creation_time_utc)
Index(None, backup_job_sessions.c.parent_session_uid)  # agent per-computer sessions under their parent

backup_task_sessions = Table(
    "backup_task_sessions",
    metadata,
    _uid(),
    _href(),
    Column(
        "job_session_uid",
        String(200),
        ForeignKey("backup_job_sessions.uid"),
        nullable=False,
        comment="The job session the task belongs to. Source: EM's `JobSessionUid` element.",
    ),
    _server(),
    Column(
        "vm_restore_point_uid",
        String(200),
        ForeignKey("vm_restore_points.uid"),
        info=KEPT | DERIVED,
        comment="The VM restore point the task made; NULL when none is known (always for agent computers, "
        "whose points are `agent_restore_points`). Source: EM's `Related` link of Type `VmRestorePoint` "
        "when it gives one, else the loader's inference (`vm_restore_point_link` says which).",
    ),
    Column(
        "vm_restore_point_link",
        String(20),
        info=KEPT | DERIVED,
        comment="Where `vm_restore_point_uid` came from: `link` (EM's `Related` link), `inferred` (EM gave "
        "none: a point of the same VM created within the task's time window by a task that ended Success or "
        "Warning), or NULL (no point known). An inferred value never replaces a link. Source: the loader.",
    ),
    Column(
        "name",
        String(500),
        comment="`<vm>@<start time>` as EM names the task. Source: EM's `Name` attribute.",
    ),
    Column(
        "vm_display_name",
        String(500),
        comment="Name of the VM (or agent computer) as shown in Veeam. Source: EM's `VmDisplayName` attribute.",
    ),
    Column(
        "vm_uid",
        String(500),
        comment="The VM's hierarchy reference (= `vm_restore_points.hierarchy_obj_ref`); NULL on servers "
        "before v10 and for agent computers. Source: EM's `VmUid` element.",
    ),
    *_task_outcome(),
    Column(
        "total_size",
        BigInteger,
        comment="The VM's source size (its disks) in bytes: not bytes transferred, not the backup's size; "
        "0 on failed tasks. Source: EM's `TotalSize` element (its documented meaning is disputed: "
        "em-backup-side.md §2).",
    ),
    *_load_metadata(),
    comment="One VM (or agent computer) processed in one backup job session (EM type `BackupTaskSession`).",
)
Index(None, backup_task_sessions.c.job_session_uid)
Index(None, backup_task_sessions.c.creation_time_utc)
Index(None, backup_task_sessions.c.vm_uid, backup_task_sessions.c.creation_time_utc)
