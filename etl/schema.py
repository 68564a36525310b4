"""The warehouse schema: the one definition that load, migrations, reports, tests and the data dictionary use.

Entity tables are keyed by the EM UID; bookkeeping tables (etl_*) hold runs, watermarks, locks, quarantine
and settings. Every table and column carries a `comment` (meaning, unit, and for entity data its source:
which EM element, attribute or link, or the loader); PostgreSQL stores them. Imports nothing from etl.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator):
    """An instant: ``timestamptz`` on PostgreSQL; on SQLite stored as UTC text and read back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: instants must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


# Marks in a column's `info`:
# KEPT: the loader fills the column itself (from a lookup or an inference), not from the entity: a NULL
# from EM never overwrites what is there (etl.load).
KEPT = {"kept": True}
# DERIVED: a value the loader works out rather than reads from EM (the contract: "marked as such"); the
# data dictionary lists these under "Derived values".
DERIVED = {"derived": True}

# --- the columns that mean the same in every entity table that has them: declared once here ----------


def _uid() -> Column:
    return Column(
        "uid",
        String(200),
        primary_key=True,
        comment="EM's UID of the object, `urn:veeam:<Type>:<guid>`: the key. Source: EM's `UID` attribute; "
        "for a placeholder, the field or link that named it (a link's guid is the last segment of its href).",
    )


def _href() -> Column:
    return Column(
        "href",
        Text,
        comment="EM's URL of the object, as EM gave it; for a placeholder, the href of the link that named "
        "it. Source: EM's `Href` attribute.",
    )


def _placeholder() -> Column:
    return Column(
        "placeholder",
        Boolean,
        nullable=False,
        default=False,
        info=DERIVED,
        comment="True when the loader recorded the row only from a child's link because EM would not give "
        "the object (404, or 403 for the account's role): only `uid`, `href` and `name` are known; a later "
        "run that can read it replaces it. Source: the loader.",
    )


def _deleted_at() -> Column:
    return Column(
        "deleted_at",
        UTCDateTime,
        info=DERIVED,
        comment="When a retention sweep found that EM no longer lists the object (UTC; not EM's deletion "
        "time); NULL while EM lists it, cleared if it comes back. Rows are never deleted: the views count "
        "only rows with `deleted_at` NULL. Source: the loader.",
    )


def _source() -> Column:
    return Column(
        "source",
        String(500),
        nullable=False,
        comment="The Enterprise Manager the row came from: its API URL (scheme and host lower-cased, no "
        "credentials), or the name `--source-name` or the estate file gave it. Source: the loader.",
    )


def _load_metadata() -> list[Column]:
    """The load metadata every entity table ends with: written by etl.load on each row it stores, never
    part of the transform's rows."""
    return [
        _source(),
        Column(
            "first_loaded_at",
            UTCDateTime,
            nullable=False,
            comment="When a load first inserted the row (UTC). Source: the loader.",
        ),
        Column(
            "last_loaded_at",
            UTCDateTime,
            nullable=False,
            comment="When a load last wrote the row: inserted it, or found a value changed (UTC). Source: the "
            "loader.",
        ),
        # not a declared foreign key: a per-row check against etl_runs on every insert would cost more
        # than it protects
        Column(
            "run_id",
            Integer,
            nullable=False,
            comment="The run (`etl_runs.id`) that last wrote the row. Source: the loader.",
        ),
    ]


# The load metadata's column names, in the order etl.load writes them.
META_COLUMNS: tuple[str, ...] = tuple(c.name for c in _load_metadata())


def meta_values(source: str, run_id: int, loaded_at: datetime) -> dict[str, Any]:
    """The load metadata of a row that run `run_id` of `source` writes at `loaded_at` (aware), by column
    name in `META_COLUMNS` order."""
    return {"source": source, "first_loaded_at": loaded_at, "last_loaded_at": loaded_at, "run_id": run_id}


def shared_columns() -> list[Column]:
    """Fresh copies of the columns that mean the same in every entity table that has them (uid, href,
    placeholder, deleted_at and the load metadata), as declared here: what tests compare tables with."""
    return [_uid(), _href(), _placeholder(), _deleted_at(), *_load_metadata()]


def _server() -> Column:
    return Column(
        "backup_server_uid",
        String(200),
        ForeignKey("backup_servers.uid"),
        comment="The backup server (Veeam Backup & Replication server) the object belongs to or ran on. "
        "Source: EM's `Up` link of Type `BackupServerReference`.",
    )


def _job_by_filter(query: str, sources: str) -> list[Column]:
    """The job of a backup or replica (EM type `query`), which no entity names: etl.derive works it
    out, and `job_uid_source` says how (`sources`)."""
    return [
        Column(
            "job_uid",
            String(200),
            ForeignKey("jobs.uid"),
            info=KEPT | DERIVED,
            comment=f"The job that writes the {query.lower()}; NULL when not known. EM's `{query}` entity "
            "names no job: the loader works it out, as `job_uid_source` says, and a later read never "
            "erases it. Source: the loader.",
        ),
        Column(
            "job_uid_source",
            String(20),
            info=KEPT | DERIVED,
            comment=f"Where `job_uid` came from: `query` (EM's answer to a `type={query}&filter=JobUid==<job>` "
            f"query), {sources}; NULL when `job_uid` is NULL, and for rows mapped before the warehouse "
            "recorded sources. Source: the loader.",
        ),
    ]


etl_runs = Table(
    "etl_runs",
    metadata,
    Column(
        "id",
        Integer,
        primary_key=True,
        autoincrement=True,
        comment="Run number: the `run_id` of what it wrote.",
    ),
    Column(
        "source",
        String(500),
        nullable=False,
        comment="The Enterprise Manager loaded (as the entity tables' `source` name it).",
    ),
    Column("started_at", UTCDateTime, nullable=False, comment="When the run started (UTC)."),
    Column(
        "finished_at",
        UTCDateTime,
        comment="When the run ended (UTC); NULL while it runs, or when it was killed before it could say.",
    ),
    Column("status", String(20), nullable=False, comment="`running`, `succeeded` or `failed`."),
    Column(
        "mode",
        String(20),
        nullable=False,
        comment="`full`, `incremental`, `since` or `repair` (`veeam-etl verify --repair`: sweep, check, reload).",
    ),
    Column("rows_inserted", Integer, nullable=False, default=0, comment="Entity rows the run inserted."),
    Column(
        "rows_updated",
        Integer,
        nullable=False,
        default=0,
        comment="Entity rows the run updated (a value changed).",
    ),
    Column("counts", Text, comment='Rows per table, JSON `{table: {"inserted": n, "updated": n}}`.'),
    Column(
        "parents_from_links",
        Integer,
        nullable=False,
        default=0,
        comment="Parents EM would not give, recorded from their links (placeholder rows).",
    ),
    Column("requests", Integer, nullable=False, default=0, comment="HTTP requests made to EM."),
    Column("retries", Integer, nullable=False, default=0, comment="HTTP requests retried."),
    Column(
        "quarantined",
        Integer,
        nullable=False,
        default=0,
        comment="Entities the run could not read and quarantined (`etl_quarantine`).",
    ),
    Column(
        "foreign_links",
        Integer,
        nullable=False,
        default=0,
        comment="Links to other origins that were refused (never requested: the token never leaves).",
    ),
    Column(
        "new_values",
        Integer,
        nullable=False,
        default=0,
        comment="Enumeration values (State, Result, JobType, ...) EM sent that its documentation does not "
        "list and that no earlier run had met: stored as sent, warned about once per warehouse "
        "(`etl_undocumented_values`).",
    ),
    Column(
        "sweep_requests",
        Integer,
        nullable=False,
        default=0,
        comment="Of `requests`: those of the retention sweep (EM's uid lists and the lookups by UID of what "
        "they lack).",
    ),
    Column(
        "refused",
        Text,
        comment='JSON `[{"type": t, "role": r}]`: query types EM refused to the account (HTTP 403), skipped '
        "by the run, each with the EM role that reads it; NULL when EM refused nothing.",
    ),
    # the completeness check (etl.verify), NULL in a run that made none
    Column(
        "verify_compared",
        Integer,
        comment="Counts the completeness check compared (EM's against the warehouse's: per type, then "
        "backup server, then day or backup where totals differ); NULL when the run made no check "
        "(docs/completeness.md).",
    ),
    Column(
        "verify_differing",
        Integer,
        comment="Buckets (type, backup server, day; or backups) whose counts differed and that the run "
        "read again; NULL when the run made no check.",
    ),
    Column(
        "verify_reloaded",
        Integer,
        comment="Rows the completeness check wrote while reading the differing buckets again; NULL when "
        "the run made no check.",
    ),
    Column(
        "verify_requests",
        Integer,
        comment="Of `requests`: those of the completeness check (counts and reloads); NULL when the run "
        "made no check.",
    ),
    Column("error", Text, comment="Why the run failed (secrets masked); NULL when it did not."),
    Column("host", String(255), comment="Host name of the machine the run ran on."),
    Column("pid", Integer, comment="Process id of the run."),
    comment="One row per run of the loader (`veeam-etl run`, `verify --repair`, `demo`): outcome, counts "
    "and errors. Written by the loader.",
)
Index(None, etl_runs.c.source, etl_runs.c.started_at)

backup_servers = Table(
    "backup_servers",
    metadata,
    _uid(),
    _href(),
    Column(
        "name",
        String(500),
        comment="The backup server's DNS name or IP address. Source: EM's `Name` attribute.",
    ),
    Column(
        "description",
        Text,
        comment="Description entered in Veeam; NULL when empty. Source: EM's `Description` element.",
    ),
    Column(
        "port",
        Integer,
        comment="Veeam Backup Service port (9392; v13 servers may report 443). Source: EM's `Port` element.",
    ),
    Column(
        "version",
        String(100),
        comment="Veeam Backup & Replication version, e.g. `12.1.2.172`. Source: EM's `Version` element.",
    ),
    Column(
        "wcf_port",
        Integer,
        comment="WCF port of the backup server; NULL when EM does not send it. Source: EM's `WcfPort` element.",
    ),
    Column(
        "vbr_certificate_thumbprint",
        String(200),
        comment="Thumbprint of the backup server's certificate; NULL when EM does not send it. Source: "
        "EM's `VbrCertificateThumbprint` element.",
    ),
    _placeholder(),
    *_load_metadata(),
    comment="Veeam Backup & Replication servers that Enterprise Manager manages (EM type `BackupServer`), "
    "read whole every run.",
)

jobs = Table(
    "jobs",
    metadata,
    _uid(),
    _href(),
    _server(),
    Column(
        "name",
        String(500),
        comment="Job name. Source: EM's `Name` attribute.",
    ),
    Column(
        "job_type",
        String(100),
        comment="As EM sent it: `Backup`, `BackupCopy`, `ImmediateBackupCopy` (how v12+ reports periodic "
        "copy jobs), `Replica`, `AgentBackup`, ...; NULL for file-share (NAS) jobs, whose entity has none "
        "(their sessions say `NasBackup`), and for placeholders. Source: EM's `JobType` element.",
    ),
    Column(
        "platform",
        String(100),
        comment="`VMware`, `HyperV` / `Hyperv`, `vCloud`, `AgentForWindows`, `AgentForLinux`, "
        "`CustomPlatform`, ... as EM sent it; NULL for file-share (NAS) jobs. Source: EM's `Platform` element.",
    ),
    Column("description", Text, comment="Description entered in Veeam. Source: EM's `Description` element."),
    Column(
        "schedule_configured",
        Boolean,
        comment="True when a schedule is configured. Source: EM's `ScheduleConfigured` element.",
    ),
    Column(
        "schedule_enabled",
        Boolean,
        comment="True when the schedule is enabled. Source: EM's `ScheduleEnabled` element.",
    ),
    Column(
        "next_run_utc",
        UTCDateTime,
        comment="Next scheduled run (UTC); NULL for jobs without one (copy jobs). Source: EM's `NextRun` element.",
    ),
    _placeholder(),
    *_load_metadata(),
    comment="Backup, backup copy, replication, agent and file-share (NAS) jobs (EM types `Job`, "
    "`AgentBackupJob`, `NasJob`), read whole every run, and jobs known only from a session's or backup's "
    "link (placeholders). Every kind is keyed `urn:veeam:Job:<guid>`, as sessions name them: EM's "
    "`AgentBackupJob` and `NasJob` UIDs carry other prefixes for the same GUID (em-backup-side.md §10).",
)

repositories = Table(
    "repositories",
    metadata,
    _uid(),
    _href(),
    _server(),
    Column(
        "name",
        String(500),
        comment='Repository name (not unique: every server has a "Default Backup Repository"). Source: '
        "EM's `Name` attribute.",
    ),
    Column(
        "kind",
        String(100),
        comment="`WindowsLocal`, `LinuxLocal`, `CifsShare`, `DDBoost`, `Cloud`, `Extendable` (scale-out), "
        "... as EM sent it, values EM documents nowhere (`AmazonS3Compatible`) included. Source: EM's "
        "`Kind` element.",
    ),
    Column(
        "capacity",
        BigInteger,
        info=DERIVED,
        comment="Capacity in bytes; NULL when EM reports -1 (unknown: some cloud, object-storage or "
        "deduplicating repositories): never divide by it. Source: EM's `Capacity` element, -1 read as NULL "
        "by the loader.",
    ),
    Column(
        "free_space",
        BigInteger,
        info=DERIVED,
        comment="Free space in bytes; NULL when EM reports -1 (object storage reports no free space either). "
        "Source: EM's `FreeSpace` element, -1 read as NULL by the loader.",
    ),
    _placeholder(),
    *_load_metadata(),
    comment="Backup repositories (EM type `Repository`), read whole every run: capacity and free space as "
    "the newest run read them (their history is in `repository_space`).",
)

repository_space = Table(
    "repository_space",
    metadata,
    Column(
        "repository_uid",
        String(200),
        ForeignKey("repositories.uid"),
        primary_key=True,
        comment="The repository (`repositories.uid`). Source: EM's `UID` attribute of the repository read.",
    ),
    Column(
        "run_id",
        Integer,
        primary_key=True,
        comment="The run (`etl_runs.id`) that read it: one row per run and repository. Source: the loader.",
    ),
    _source(),
    Column(
        "observed_at",
        UTCDateTime,
        nullable=False,
        comment="When the run read it (UTC). Source: the loader.",
    ),
    Column(
        "capacity",
        BigInteger,
        info=DERIVED,
        comment="Capacity in bytes then; NULL when unknown (EM's -1). Source: EM's `Capacity` element, -1 "
        "read as NULL by the loader.",
    ),
    Column(
        "free_space",
        BigInteger,
        info=DERIVED,
        comment="Free space in bytes then; NULL when unknown (EM's -1). Source: EM's `FreeSpace` element, -1 "
        "read as NULL by the loader.",
    ),
    comment="One observation of a repository's capacity and free space per run that read it (placeholders "
    "left out): the trend behind `v_repository_capacity` and `v_repository_space_daily`.",
)

backups = Table(
    "backups",
    metadata,
    _uid(),
    _href(),
    _server(),
    Column(
        "repository_uid",
        String(200),
        ForeignKey("repositories.uid"),
        comment="The repository the backup is stored on. Source: EM's `Up` link of Type `RepositoryReference`.",
    ),
    Column(
        "parent_backup_uid",
        String(200),
        ForeignKey("backups.uid"),
        comment="For an agent `ChildBackup` (one computer): its `ParentBackup`; NULL otherwise. Source: EM's "
        "`Up` link named `Parent Backup` (Type `Backup`).",
    ),
    *_job_by_filter(
        "Backup",
        "`link` (the restore points its VM restore points hold were made by that job's tasks, by EM's link "
        "or inferred), `parent` (an agent child backup given its parent backup's job)",
    ),
    Column(
        "name",
        String(500),
        comment="Backup name: the job's name (agent children: `<job> - <computer>`). Source: EM's `Name` "
        "attribute.",
    ),
    Column(
        "platform",
        String(100),
        comment="`VMware`, `HyperV`, `vCloud`, `AgentForLinux`, `AgentForWindows`, ... as EM sent it. Source: "
        "EM's `Platform` element.",
    ),
    Column(
        "backup_type",
        String(100),
        comment="`Standard`, `ParentBackup` (an agent job's container) or `ChildBackup` (one computer), as EM "
        "sent it. Source: EM's `BackupType` element.",
    ),
    _placeholder(),
    _deleted_at(),
    *_load_metadata(),
    comment="Backup chain sets (EM type `Backup`), usually one per job and repository, read whole every run; "
    "an agent job has a `ParentBackup` with one `ChildBackup` per computer. EM's entity names no job: the "
    "loader works it out (`job_uid_source`).",
)

replicas = Table(
    "replicas",
    metadata,
    _uid(),
    _href(),
    _server(),
    Column(
        "repository_uid",
        String(200),
        ForeignKey("repositories.uid"),
        comment="The repository holding the replica's metadata. Source: EM's `Up` link of Type "
        "`RepositoryReference`.",
    ),
    *_job_by_filter("Replica", "or `link` (the replica points its job's tasks link)"),
    Column(
        "name",
        String(500),
        comment="Replica name: the replication job's name. Source: EM's `Name` attribute.",
    ),
    Column(
        "platform",
        String(100),
        comment="`VMware`, `HyperV` / `Hyperv`, `vCloud` as EM sent it. Source: EM's `Platform` element.",
    ),
    _placeholder(),
    _deleted_at(),
    *_load_metadata(),
    comment="VM replicas (EM type `Replica`), one per replication job and target, read whole every run. EM's "
    "entity names no job: the loader works it out (`job_uid_source`).",
)

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

vm_replica_points = Table(
    "vm_replica_points",
    metadata,
    _uid(),
    _href(),
    _server(),
    Column(
        "replica_uid",
        String(200),
        ForeignKey("replicas.uid"),
        comment="The replica (`urn:veeam:Replica:<guid>`). Source: EM's `Up` link of Type `ReplicaReference`.",
    ),
    Column(
        "name",
        String(500),
        comment="`<vm>@<time>` as EM names the point. Source: EM's `Name` attribute.",
    ),
    Column(
        "vm_display_name",
        String(500),
        comment="Name of the VM as shown in Veeam. Source: EM's `VmDisplayName` attribute.",
    ),
    Column(
        "vm_name",
        String(500),
        comment="VM name; NULL on servers that do not send it (older ones). Source: EM's `VmName` element.",
    ),
    Column(
        "creation_time_utc",
        UTCDateTime,
        comment="When the point was created (UTC). Source: EM's `CreationTimeUTC` element.",
    ),
    Column(
        "algorithm",
        String(50),
        comment="`Full`, `Incremental`, `ReversedIncremental` or `SyntheticFull`, as EM sent it. Source: "
        "EM's `Algorithm` element.",
    ),
    Column(
        "point_type",
        String(50),
        comment="`Full`, `Increment`, `ReverseIncrement` or `Snapshot`, as EM sent it. Source: EM's "
        "`PointType` element.",
    ),
    _placeholder(),
    _deleted_at(),
    *_load_metadata(),
    comment="Restore points of VM replicas (EM type `VmReplicaPoint`), read by creation time per backup server.",
)
Index(None, vm_replica_points.c.creation_time_utc)
Index(None, vm_replica_points.c.vm_display_name, vm_replica_points.c.creation_time_utc)

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

restore_points = Table(
    "restore_points",
    metadata,
    _uid(),
    _href(),
    Column(
        "backup_uid",
        String(200),
        ForeignKey("backups.uid"),
        comment="The backup the point belongs to. Source: EM's `Up` link of Type `BackupReference`.",
    ),
    _server(),
    Column(
        "name",
        String(500),
        comment="EM's name, a date like `Jun  5 2025  1:01AM` (do not parse it: read `backup_date_utc`). "
        "Source: EM's `Name` attribute.",
    ),
    Column(
        "backup_date_utc",
        UTCDateTime,
        comment="When the backup run made the point (UTC; about the session's start). Source: EM's "
        "`BackupDateUTC` element.",
    ),
    _placeholder(),
    _deleted_at(),
    *_load_metadata(),
    comment="Job-level restore points (EM type `RestorePoint`): one backup run of one backup.",
)
Index(None, restore_points.c.backup_uid)

backup_files = Table(
    "backup_files",
    metadata,
    _uid(),
    _href(),
    Column(
        "backup_uid",
        String(200),
        ForeignKey("backups.uid"),
        comment="The backup the file belongs to. Source: EM's `Up` link of Type `BackupReference`.",
    ),
    _server(),
    Column(
        "name",
        String(500),
        comment="File name (its date is the backup server's local time: read `creation_time_utc`). Source: "
        "EM's `Name` attribute.",
    ),
    Column("file_path", Text, comment="Full path on the repository. Source: EM's `FilePath` element."),
    Column(
        "file_type",
        String(50),
        comment="`vbk` (full), `vib` (incremental) or `vrb` (reverse incremental), as EM sent it. Source: "
        "EM's `FileType` element.",
    ),
    Column(
        "backup_size",
        BigInteger,
        comment="Bytes on disk, as recorded when the file was written (later ReFS block cloning or "
        "deduplicating storage savings are not reflected). Source: EM's `BackupSize` element.",
    ),
    Column(
        "data_size",
        BigInteger,
        comment="Bytes read from the source for the file, before compression and deduplication. Source: "
        "EM's `DataSize` element.",
    ),
    Column(
        "deduplication_ratio",
        Float,
        comment="Deduplication ratio (e.g. 5.71; 0 or 1 when none). Source: EM's `DeduplicationRatio` element.",
    ),
    Column(
        "compress_ratio",
        Float,
        comment="Compression ratio (e.g. 1.52). Source: EM's `CompressRatio` element.",
    ),
    Column(
        "creation_time_utc",
        UTCDateTime,
        comment="When the file was created (UTC). Source: EM's `CreationTimeUtc` element (spelled `Utc` on "
        "backup files).",
    ),
    _placeholder(),
    _deleted_at(),
    *_load_metadata(),
    comment="Backup files on repositories (EM type `BackupFile`): `.vbk` full, `.vib` incremental, `.vrb` "
    "reverse incremental.",
)
Index(None, backup_files.c.backup_uid)
Index(None, backup_files.c.creation_time_utc)

vm_restore_points = Table(
    "vm_restore_points",
    metadata,
    _uid(),
    _href(),
    Column(
        "restore_point_uid",
        String(200),
        ForeignKey("restore_points.uid"),
        comment="The job-level restore point. Source: EM's `Up` link of Type `RestorePointReference`.",
    ),
    Column(
        "backup_file_uid",
        String(200),
        ForeignKey("backup_files.uid"),
        comment="The backup file holding the VM's data; NULL when EM gives no link. Source: EM's `Up` link "
        "of Type `BackupFileReference`.",
    ),
    _server(),
    Column(
        "name",
        String(500),
        comment="`<vm>@<time>` as EM names the point. Source: EM's `Name` attribute.",
    ),
    Column(
        "vm_display_name",
        String(500),
        comment="Name of the VM as shown in Veeam; NULL on servers that do not send it. Source: EM's "
        "`VmDisplayName` attribute.",
    ),
    Column(
        "vm_name",
        String(500),
        comment="VM name; NULL on servers that do not send it. Source: EM's `VmName` element.",
    ),
    Column(
        "hierarchy_obj_ref",
        String(500),
        comment="The VM's hierarchy reference, e.g. `urn:VMware:Vm:<vcenter>.vm-62228`; equals "
        "`backup_task_sessions.vm_uid`; NULL on servers that do not send it. Source: EM's `HierarchyObjRef` "
        "element.",
    ),
    Column(
        "creation_time_utc",
        UTCDateTime,
        comment="When the point was created (UTC). Source: EM's `CreationTimeUTC` element.",
    ),
    Column(
        "algorithm",
        String(50),
        comment="`Full`, `Incremental`, `ReversedIncremental` or `SyntheticFull`, as EM sent it. Source: "
        "EM's `Algorithm` element.",
    ),
    Column(
        "point_type",
        String(50),
        comment="`Full`, `Increment` or `ReverseIncrement`, as EM sent it. Source: EM's `PointType` element.",
    ),
    _placeholder(),
    _deleted_at(),
    *_load_metadata(),
    comment="One VM's slice of a restore point (EM type `VmRestorePoint`): what a VM can be restored from.",
)
Index(None, vm_restore_points.c.hierarchy_obj_ref, vm_restore_points.c.creation_time_utc)
Index(None, vm_restore_points.c.restore_point_uid)
# tasks of older servers (no VmUid) find their point by name within their window (etl.derive)
Index(None, vm_restore_points.c.backup_server_uid, vm_restore_points.c.creation_time_utc)

# An agent computer's restore point (em-backup-side.md §10): EM keeps it apart from VM restore points.
agent_restore_points = Table(
    "agent_restore_points",
    metadata,
    _uid(),
    _href(),
    Column(
        "restore_point_uid",
        String(200),
        ForeignKey("restore_points.uid"),
        comment="The job-level restore point (of the computer's child backup). Source: EM's `Up` link of "
        "Type `RestorePointReference`.",
    ),
    Column(
        "backup_file_uid",
        String(200),
        ForeignKey("backup_files.uid"),
        comment="The backup file holding the point; NULL when EM gives no link. Source: EM's `Up` link of "
        "Type `BackupFileReference`.",
    ),
    _server(),
    Column(
        "name",
        String(500),
        comment="`<computer>@<time>` as EM names the point. Source: EM's `Name` attribute.",
    ),
    Column(
        "computer_name",
        String(500),
        info=DERIVED,
        comment="The computer's name: the point's name up to its last `@` (EM sends no computer element); "
        "the name its backup task sessions carry in `vm_display_name`. Source: the loader, from EM's `Name` "
        "attribute.",
    ),
    Column(
        "creation_time_utc",
        UTCDateTime,
        comment="When the point was created (UTC). Source: EM's `CreationTimeUTC` element.",
    ),
    Column(
        "algorithm",
        String(50),
        comment="`Full`, `Incremental` or `SyntheticFull`, as EM sent it. Source: EM's `Algorithm` element.",
    ),
    Column(
        "point_type",
        String(50),
        comment="`Full` or `Increment`, as EM sent it. Source: EM's `PointType` element.",
    ),
    _placeholder(),
    _deleted_at(),
    *_load_metadata(),
    comment="One agent computer's restore point (EM type `AgentRestorePoint`, EM's own type for computers "
    "that Veeam Agent jobs back up, not a `VmRestorePoint`): what a computer can be restored from.",
)
# a computer's newest point on its backup server (v_vm_backup_status); named: the generated name
# would pass PostgreSQL's 63 characters
Index(
    "ix_agent_restore_points_server_computer_time",
    agent_restore_points.c.backup_server_uid,
    agent_restore_points.c.computer_name,
    agent_restore_points.c.creation_time_utc,
)
Index(None, agent_restore_points.c.restore_point_uid)

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

etl_watermarks = Table(
    "etl_watermarks",
    metadata,
    Column("source", String(500), primary_key=True, comment="The Enterprise Manager."),
    Column(
        "entity_type",
        String(100),
        primary_key=True,
        comment="EM type the watermark is for, e.g. `ReplicaJobSession`.",
    ),
    Column(
        "backup_server_uid",
        String(200),
        primary_key=True,
        comment="The backup server the window is for: EM collects each server on its own schedule, so each "
        'keeps its own watermark (em-api.md, "Collection lag per backup server").',
    ),
    Column(
        "watermark_utc",
        UTCDateTime,
        nullable=False,
        comment="Newest creation time committed for that type and server (UTC).",
    ),
    Column("run_id", Integer, ForeignKey("etl_runs.id"), nullable=False, comment="The run that set it."),
    Column("updated_at", UTCDateTime, nullable=False, comment="When it was set (UTC)."),
    comment="Per source, EM type and backup server: the newest creation time committed, where the next "
    "incremental load resumes (less `--lookback`).",
)

etl_sweeps = Table(
    "etl_sweeps",
    metadata,
    Column("source", String(500), primary_key=True, comment="The Enterprise Manager."),
    Column(
        "swept_at",
        UTCDateTime,
        nullable=False,
        comment="When its retention sweep last ran (UTC); the next is due `--sweep-hours` later.",
    ),
    Column("run_id", Integer, nullable=False, comment="The run that swept."),
    comment="Per source: when the retention sweep last compared the warehouse with EM's uid lists.",
)

etl_locks = Table(
    "etl_locks",
    metadata,
    Column("source", String(500), primary_key=True, comment="The Enterprise Manager locked."),
    Column("run_id", Integer, comment="The run holding the lock."),
    Column("host", String(255), nullable=False, comment="Host name of the run holding the lock."),
    Column("pid", Integer, nullable=False, comment="Process id of the run holding the lock."),
    Column("acquired_at", UTCDateTime, nullable=False, comment="When the lock was taken (UTC)."),
    Column(
        "heartbeat_at",
        UTCDateTime,
        nullable=False,
        comment="The holder's last sign of life (UTC); a stale heartbeat lets the next run take over.",
    ),
    comment="The one-run-at-a-time lock per source, with a heartbeat.",
)

etl_quarantine = Table(
    "etl_quarantine",
    metadata,
    Column("source", String(500), primary_key=True, comment="The Enterprise Manager."),
    Column("href", String(2000), primary_key=True, comment="URL of the unreadable entity."),
    Column("entity_type", String(100), nullable=False, comment="EM type of the entity."),
    Column("uid", String(200), comment="Its UID, when that could be read."),
    Column("error", Text, nullable=False, comment="Why it could not be read."),
    Column("excerpt", Text, comment="The start of the offending XML (1000 characters)."),
    Column(
        "run_id", Integer, ForeignKey("etl_runs.id"), nullable=False, comment="The run that quarantined it."
    ),
    Column("quarantined_at", UTCDateTime, nullable=False, comment="When (UTC)."),
    comment="Entities EM sent that could not be read: kept for inspection, asked for again by later runs.",
)

# Enum values EM sent that its documentation does not list: warned about once per warehouse, when first
# seen (em-api.md, "Values are open sets"), and listed by `veeam-etl status`.
etl_undocumented_values = Table(
    "etl_undocumented_values",
    metadata,
    Column(
        "entity_type",
        String(100),
        primary_key=True,
        comment="EM type that carried the value, e.g. `BackupJobSession`.",
    ),
    Column("column_name", String(100), primary_key=True, comment="The column it is stored in, e.g. `state`."),
    Column("value", String(500), primary_key=True, comment="The value as EM sent it."),
    Column("source", String(500), nullable=False, comment="The Enterprise Manager that sent it first."),
    Column(
        "run_id",
        Integer,
        ForeignKey("etl_runs.id"),
        nullable=False,
        comment="The run that first met it (it counts in that run's `new_values`).",
    ),
    Column("first_seen_at", UTCDateTime, nullable=False, comment="When it was first met (UTC)."),
    comment="Enumeration values EM sent that its documentation does not list (a `State`, `Kind`, `JobType`, "
    "... newer than this tool), one row per type, column and value: recorded when first seen, so each is "
    "warned about once per warehouse; listed by `veeam-etl status`. The value is stored as sent in its table.",
)

etl_settings = Table(
    "etl_settings",
    metadata,
    Column("key", String(100), primary_key=True, comment="Setting name, e.g. `rpo_hours`."),
    Column("value", Text, nullable=False, comment="Setting value, as text."),
    comment="Settings the reporting views read: `rpo_hours` (replication RPO, default 24, inserted by the "
    "first migration), `backup_rpo_hours` (backup RPO) and `repository_low_free_pct` (low free space "
    "threshold); a key that is absent reads as its default (24 and 10).",
)

IN_LIST = 500  # values per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


def table(name: str) -> Table:
    """The table named `name`. Raises KeyError."""
    return metadata.tables[name]
