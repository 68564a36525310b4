"""column and table comments: every column's meaning, unit and source

Every table and column of the warehouse gets a comment (PostgreSQL `COMMENT ON`), so that psql, BI tools and
catalog browsers show what each holds, where it comes from (EM's element, attribute or link, or the loader),
and its unit. The texts are those of etl.schema at this revision, frozen here; a later change to one is a
later migration. SQLite stores no comments: there this revision changes nothing. No row is touched.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-16 09:00:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The comments every entity table shares, then {table: (table comment, {column: comment})}.
UID = "EM's UID of the object, `urn:veeam:<Type>:<guid>`: the key. Source: EM's `UID` attribute; for a placeholder, the field or link that named it (a link's guid is the last segment of its href)."
HREF = "EM's URL of the object, as EM gave it; for a placeholder, the href of the link that named it. Source: EM's `Href` attribute."
PLACEHOLDER = "True when the loader recorded the row only from a child's link because EM would not give the object (404, or 403 for the account's role): only `uid`, `href` and `name` are known; a later run that can read it replaces it. Source: the loader."
DELETED_AT = "When a retention sweep found that EM no longer lists the object (UTC; not EM's deletion time); NULL while EM lists it, cleared if it comes back. Rows are never deleted: the views count only rows with `deleted_at` NULL. Source: the loader."
SOURCE = "The Enterprise Manager the row came from: its API URL (scheme and host lower-cased, no credentials), or the name `--source-name` or the estate file gave it. Source: the loader."
FIRST_LOADED_AT = "When a load first inserted the row (UTC). Source: the loader."
LAST_LOADED_AT = (
    "When a load last wrote the row: inserted it, or found a value changed (UTC). Source: the loader."
)
RUN_ID = "The run (`etl_runs.id`) that last wrote the row. Source: the loader."
SERVER = "The backup server (Veeam Backup & Replication server) the object belongs to or ran on. Source: EM's `Up` link of Type `BackupServerReference`."

COMMENTS: dict[str, tuple[str, dict[str, str]]] = {
    "backup_servers": (
        "Veeam Backup & Replication servers that Enterprise Manager manages (EM type `BackupServer`), read whole every run.",
        {
            "uid": UID,
            "href": HREF,
            "name": "The backup server's DNS name or IP address. Source: EM's `Name` attribute.",
            "description": "Description entered in Veeam; NULL when empty. Source: EM's `Description` element.",
            "port": "Veeam Backup Service port (9392; v13 servers may report 443). Source: EM's `Port` element.",
            "version": "Veeam Backup & Replication version, e.g. `12.1.2.172`. Source: EM's `Version` element.",
            "wcf_port": "WCF port of the backup server; NULL when EM does not send it. Source: EM's `WcfPort` element.",
            "vbr_certificate_thumbprint": "Thumbprint of the backup server's certificate; NULL when EM does not send it. Source: EM's `VbrCertificateThumbprint` element.",
            "placeholder": PLACEHOLDER,
            "source": SOURCE,
            "first_loaded_at": FIRST_LOADED_AT,
            "last_loaded_at": LAST_LOADED_AT,
            "run_id": RUN_ID,
        },
    ),
    "etl_locks": (
        "The one-run-at-a-time lock per source, with a heartbeat.",
        {
            "source": "The Enterprise Manager locked.",
            "run_id": "The run holding the lock.",
            "host": "Host name of the run holding the lock.",
            "pid": "Process id of the run holding the lock.",
            "acquired_at": "When the lock was taken (UTC).",
            "heartbeat_at": "The holder's last sign of life (UTC); a stale heartbeat lets the next run take over.",
        },
    ),
    "etl_runs": (
        "One row per run of the loader (`veeam-etl run`, `verify --repair`, `demo`): outcome, counts and errors. Written by the loader.",
        {
            "id": "Run number: the `run_id` of what it wrote.",
            "source": "The Enterprise Manager loaded (as the entity tables' `source` name it).",
            "started_at": "When the run started (UTC).",
            "finished_at": "When the run ended (UTC); NULL while it runs, or when it was killed before it could say.",
            "status": "`running`, `succeeded` or `failed`.",
            "mode": "`full`, `incremental`, `since` or `repair` (`veeam-etl verify --repair`: sweep, check, reload).",
            "rows_inserted": "Entity rows the run inserted.",
            "rows_updated": "Entity rows the run updated (a value changed).",
            "counts": 'Rows per table, JSON `{table: {"inserted": n, "updated": n}}`.',
            "parents_from_links": "Parents EM would not give, recorded from their links (placeholder rows).",
            "requests": "HTTP requests made to EM.",
            "retries": "HTTP requests retried.",
            "quarantined": "Entities the run could not read and quarantined (`etl_quarantine`).",
            "foreign_links": "Links to other origins that were refused (never requested: the token never leaves).",
            "new_values": "Enumeration values (State, Result, JobType, ...) EM sent that its documentation does not list and that no earlier run had met: stored as sent, warned about once per warehouse (`etl_undocumented_values`).",
            "sweep_requests": "Of `requests`: those of the retention sweep (EM's uid lists and the lookups by UID of what they lack).",
            "refused": 'JSON `[{"type": t, "role": r}]`: query types EM refused to the account (HTTP 403), skipped by the run, each with the EM role that reads it; NULL when EM refused nothing.',
            "verify_compared": "Counts the completeness check compared (EM's against the warehouse's: per type, then backup server, then day or backup where totals differ); NULL when the run made no check (docs/completeness.md).",
            "verify_differing": "Buckets (type, backup server, day; or backups) whose counts differed and that the run read again; NULL when the run made no check.",
            "verify_reloaded": "Rows the completeness check wrote while reading the differing buckets again; NULL when the run made no check.",
            "verify_requests": "Of `requests`: those of the completeness check (counts and reloads); NULL when the run made no check.",
            "error": "Why the run failed (secrets masked); NULL when it did not.",
            "host": "Host name of the machine the run ran on.",
            "pid": "Process id of the run.",
        },
    ),
    "etl_settings": (
        "Settings the reporting views read: `rpo_hours` (replication RPO, default 24, inserted by the first migration), `backup_rpo_hours` (backup RPO) and `repository_low_free_pct` (low free space threshold); a key that is absent reads as its default (24 and 10).",
        {
            "key": "Setting name, e.g. `rpo_hours`.",
            "value": "Setting value, as text.",
        },
    ),
    "etl_sweeps": (
        "Per source: when the retention sweep last compared the warehouse with EM's uid lists.",
        {
            "source": "The Enterprise Manager.",
            "swept_at": "When its retention sweep last ran (UTC); the next is due `--sweep-hours` later.",
            "run_id": "The run that swept.",
        },
    ),
    "etl_quarantine": (
        "Entities EM sent that could not be read: kept for inspection, asked for again by later runs.",
        {
            "source": "The Enterprise Manager.",
            "href": "URL of the unreadable entity.",
            "entity_type": "EM type of the entity.",
            "uid": "Its UID, when that could be read.",
            "error": "Why it could not be read.",
            "excerpt": "The start of the offending XML (1000 characters).",
            "run_id": "The run that quarantined it.",
            "quarantined_at": "When (UTC).",
        },
    ),
    "etl_undocumented_values": (
        "Enumeration values EM sent that its documentation does not list (a `State`, `Kind`, `JobType`, ... newer than this tool), one row per type, column and value: recorded when first seen, so each is warned about once per warehouse; listed by `veeam-etl status`. The value is stored as sent in its table.",
        {
            "entity_type": "EM type that carried the value, e.g. `BackupJobSession`.",
            "column_name": "The column it is stored in, e.g. `state`.",
            "value": "The value as EM sent it.",
            "source": "The Enterprise Manager that sent it first.",
            "run_id": "The run that first met it (it counts in that run's `new_values`).",
            "first_seen_at": "When it was first met (UTC).",
        },
    ),
    "etl_watermarks": (
        "Per source, EM type and backup server: the newest creation time committed, where the next incremental load resumes (less `--lookback`).",
        {
            "source": "The Enterprise Manager.",
            "entity_type": "EM type the watermark is for, e.g. `ReplicaJobSession`.",
            "backup_server_uid": 'The backup server the window is for: EM collects each server on its own schedule, so each keeps its own watermark (em-api.md, "Collection lag per backup server").',
            "watermark_utc": "Newest creation time committed for that type and server (UTC).",
            "run_id": "The run that set it.",
            "updated_at": "When it was set (UTC).",
        },
    ),
    "jobs": (
        "Backup, backup copy, replication, agent and file-share (NAS) jobs (EM types `Job`, `AgentBackupJob`, `NasJob`), read whole every run, and jobs known only from a session's or backup's link (placeholders). Every kind is keyed `urn:veeam:Job:<guid>`, as sessions name them: EM's `AgentBackupJob` and `NasJob` UIDs carry other prefixes for the same GUID (em-backup-side.md §10).",
        {
            "uid": UID,
            "href": HREF,
            "backup_server_uid": SERVER,
            "name": "Job name. Source: EM's `Name` attribute.",
            "job_type": "As EM sent it: `Backup`, `BackupCopy`, `ImmediateBackupCopy` (how v12+ reports periodic copy jobs), `Replica`, `AgentBackup`, ...; NULL for file-share (NAS) jobs, whose entity has none (their sessions say `NasBackup`), and for placeholders. Source: EM's `JobType` element.",
            "platform": "`VMware`, `HyperV` / `Hyperv`, `vCloud`, `AgentForWindows`, `AgentForLinux`, `CustomPlatform`, ... as EM sent it; NULL for file-share (NAS) jobs. Source: EM's `Platform` element.",
            "description": "Description entered in Veeam. Source: EM's `Description` element.",
            "schedule_configured": "True when a schedule is configured. Source: EM's `ScheduleConfigured` element.",
            "schedule_enabled": "True when the schedule is enabled. Source: EM's `ScheduleEnabled` element.",
            "next_run_utc": "Next scheduled run (UTC); NULL for jobs without one (copy jobs). Source: EM's `NextRun` element.",
            "placeholder": PLACEHOLDER,
            "source": SOURCE,
            "first_loaded_at": FIRST_LOADED_AT,
            "last_loaded_at": LAST_LOADED_AT,
            "run_id": RUN_ID,
        },
    ),
    "repositories": (
        "Backup repositories (EM type `Repository`), read whole every run: capacity and free space as the newest run read them (their history is in `repository_space`).",
        {
            "uid": UID,
            "href": HREF,
            "backup_server_uid": SERVER,
            "name": 'Repository name (not unique: every server has a "Default Backup Repository"). Source: EM\'s `Name` attribute.',
            "kind": "`WindowsLocal`, `LinuxLocal`, `CifsShare`, `DDBoost`, `Cloud`, `Extendable` (scale-out), ... as EM sent it, values EM documents nowhere (`AmazonS3Compatible`) included. Source: EM's `Kind` element.",
            "capacity": "Capacity in bytes; NULL when EM reports -1 (unknown: some cloud, object-storage or deduplicating repositories): never divide by it. Source: EM's `Capacity` element, -1 read as NULL by the loader.",
            "free_space": "Free space in bytes; NULL when EM reports -1 (object storage reports no free space either). Source: EM's `FreeSpace` element, -1 read as NULL by the loader.",
            "placeholder": PLACEHOLDER,
            "source": SOURCE,
            "first_loaded_at": FIRST_LOADED_AT,
            "last_loaded_at": LAST_LOADED_AT,
            "run_id": RUN_ID,
        },
    ),
    "backup_job_sessions": (
        "One run (attempt) of a backup, backup copy, agent or file-share job (EM type `BackupJobSession`): scheduled, an automatic retry, or an agent per-computer session under its parent; read by creation time per backup server, and again until it has finished. `v_backup_job_runs` folds retries into runs.",
        {
            "uid": UID,
            "href": HREF,
            "backup_server_uid": SERVER,
            "job_uid": "The job (`urn:veeam:Job:<guid>`, agent and file-share jobs included); for an agent per-computer session, the per-computer job `<job> - <computer>` (a placeholder: EM answers 404 for it). Source: EM's `JobUid` element.",
            "parent_session_uid": "For an agent per-computer session (`AgentManagement`): its `AgentBackup` parent session; NULL otherwise. Source: EM's `Up` link of Type `BackupJobSessionReference` (named `Parent session`).",
            "job_name": "The job's name at the time of the session. Source: EM's `JobName` element.",
            "job_type": "As EM sent it: `Backup`, `BackupCopy`, `ImmediateBackupCopy`, `ImmediateBackupCopyWorker`, `AgentBackup`, `AgentManagement`, `NasBackup`, ... Source: EM's `JobType` element.",
            "name": "`<job>@<start time>` as EM names the session (do not parse it). Source: EM's `Name` attribute.",
            "creation_time_utc": "When the session started (UTC). Source: EM's `CreationTimeUTC` element.",
            "end_time_utc": "When the session ended (UTC); NULL while it runs. Source: EM's `EndTimeUTC` element.",
            "state": "As EM sent it: `Stopped` means finished; anything else is unfinished (a backup copy session can stay `Working` or `Idle` for days). Source: EM's `State` element.",
            "result": "As EM sent it: `Success`, `Warning`, `Failed`, `None`, or a value EM did not document; not to be trusted before `state` is `Stopped`. Source: EM's `Result` element.",
            "progress": "Percent done, 0-100 (a copy parent may end at 0). Source: EM's `Progress` element.",
            "is_retry": "True for an automatic retry (EM links a retry to nothing; `v_backup_job_runs` folds it into the run it follows). Source: EM's `IsRetry` element.",
            "failure_message": "EM's summary of what went wrong, when anything did. Source: EM's `FailureMessage` element.",
            "placeholder": PLACEHOLDER,
            "source": SOURCE,
            "first_loaded_at": FIRST_LOADED_AT,
            "last_loaded_at": LAST_LOADED_AT,
            "run_id": RUN_ID,
        },
    ),
    "backups": (
        "Backup chain sets (EM type `Backup`), usually one per job and repository, read whole every run; an agent job has a `ParentBackup` with one `ChildBackup` per computer. EM's entity names no job: the loader works it out (`job_uid_source`).",
        {
            "uid": UID,
            "href": HREF,
            "backup_server_uid": SERVER,
            "repository_uid": "The repository the backup is stored on. Source: EM's `Up` link of Type `RepositoryReference`.",
            "parent_backup_uid": "For an agent `ChildBackup` (one computer): its `ParentBackup`; NULL otherwise. Source: EM's `Up` link named `Parent Backup` (Type `Backup`).",
            "job_uid": "The job that writes the backup; NULL when not known. EM's `Backup` entity names no job: the loader works it out, as `job_uid_source` says, and a later read never erases it. Source: the loader.",
            "job_uid_source": "Where `job_uid` came from: `query` (EM's answer to a `type=Backup&filter=JobUid==<job>` query), `link` (the restore points its VM restore points hold were made by that job's tasks, by EM's link or inferred), `parent` (an agent child backup given its parent backup's job); NULL when `job_uid` is NULL, and for rows mapped before the warehouse recorded sources. Source: the loader.",
            "name": "Backup name: the job's name (agent children: `<job> - <computer>`). Source: EM's `Name` attribute.",
            "platform": "`VMware`, `HyperV`, `vCloud`, `AgentForLinux`, `AgentForWindows`, ... as EM sent it. Source: EM's `Platform` element.",
            "backup_type": "`Standard`, `ParentBackup` (an agent job's container) or `ChildBackup` (one computer), as EM sent it. Source: EM's `BackupType` element.",
            "placeholder": PLACEHOLDER,
            "deleted_at": DELETED_AT,
            "source": SOURCE,
            "first_loaded_at": FIRST_LOADED_AT,
            "last_loaded_at": LAST_LOADED_AT,
            "run_id": RUN_ID,
        },
    ),
    "replica_job_sessions": (
        "One run of a replication job (EM type `ReplicaJobSession`), scheduled or an automatic retry: read by creation time per backup server, and again until it has finished.",
        {
            "uid": UID,
            "href": HREF,
            "backup_server_uid": SERVER,
            "job_uid": "The replication job (`urn:veeam:Job:<guid>`). Source: EM's `JobUid` element.",
            "job_name": "The job's name at the time of the session. Source: EM's `JobName` element.",
            "job_type": "`Replica`, as EM sent it. Source: EM's `JobType` element.",
            "name": "`<job>@<start time>` as EM names the session (do not parse it). Source: EM's `Name` attribute.",
            "creation_time_utc": "When the session started (UTC). Source: EM's `CreationTimeUTC` element.",
            "end_time_utc": "When the session ended (UTC); NULL while it runs. Source: EM's `EndTimeUTC` element.",
            "state": "As EM sent it: `Stopped` means finished; anything else (`Starting`, `Working`, `WaitingRepository`, ...) is unfinished. Source: EM's `State` element.",
            "result": "As EM sent it: `Success`, `Warning`, `Failed`, `None`, or a value EM did not document; not to be trusted before `state` is `Stopped`. Source: EM's `Result` element.",
            "progress": "Percent done, 0-100. Source: EM's `Progress` element.",
            "is_retry": "True for an automatic retry of a failed run (EM links a retry to nothing). Source: EM's `IsRetry` element.",
            "failure_message": "EM's summary of what went wrong, when anything did. Source: EM's `FailureMessage` element.",
            "placeholder": PLACEHOLDER,
            "source": SOURCE,
            "first_loaded_at": FIRST_LOADED_AT,
            "last_loaded_at": LAST_LOADED_AT,
            "run_id": RUN_ID,
        },
    ),
    "replicas": (
        "VM replicas (EM type `Replica`), one per replication job and target, read whole every run. EM's entity names no job: the loader works it out (`job_uid_source`).",
        {
            "uid": UID,
            "href": HREF,
            "backup_server_uid": SERVER,
            "repository_uid": "The repository holding the replica's metadata. Source: EM's `Up` link of Type `RepositoryReference`.",
            "job_uid": "The job that writes the replica; NULL when not known. EM's `Replica` entity names no job: the loader works it out, as `job_uid_source` says, and a later read never erases it. Source: the loader.",
            "job_uid_source": "Where `job_uid` came from: `query` (EM's answer to a `type=Replica&filter=JobUid==<job>` query), or `link` (the replica points its job's tasks link); NULL when `job_uid` is NULL, and for rows mapped before the warehouse recorded sources. Source: the loader.",
            "name": "Replica name: the replication job's name. Source: EM's `Name` attribute.",
            "platform": "`VMware`, `HyperV` / `Hyperv`, `vCloud` as EM sent it. Source: EM's `Platform` element.",
            "placeholder": PLACEHOLDER,
            "deleted_at": DELETED_AT,
            "source": SOURCE,
            "first_loaded_at": FIRST_LOADED_AT,
            "last_loaded_at": LAST_LOADED_AT,
            "run_id": RUN_ID,
        },
    ),
    "repository_space": (
        "One observation of a repository's capacity and free space per run that read it (placeholders left out): the trend behind `v_repository_capacity` and `v_repository_space_daily`.",
        {
            "repository_uid": "The repository (`repositories.uid`). Source: EM's `UID` attribute of the repository read.",
            "run_id": "The run (`etl_runs.id`) that read it: one row per run and repository. Source: the loader.",
            "source": SOURCE,
            "observed_at": "When the run read it (UTC). Source: the loader.",
            "capacity": "Capacity in bytes then; NULL when unknown (EM's -1). Source: EM's `Capacity` element, -1 read as NULL by the loader.",
            "free_space": "Free space in bytes then; NULL when unknown (EM's -1). Source: EM's `FreeSpace` element, -1 read as NULL by the loader.",
        },
    ),
    "backup_files": (
        "Backup files on repositories (EM type `BackupFile`): `.vbk` full, `.vib` incremental, `.vrb` reverse incremental.",
        {
            "uid": UID,
            "href": HREF,
            "backup_uid": "The backup the file belongs to. Source: EM's `Up` link of Type `BackupReference`.",
            "backup_server_uid": SERVER,
            "name": "File name (its date is the backup server's local time: read `creation_time_utc`). Source: EM's `Name` attribute.",
            "file_path": "Full path on the repository. Source: EM's `FilePath` element.",
            "file_type": "`vbk` (full), `vib` (incremental) or `vrb` (reverse incremental), as EM sent it. Source: EM's `FileType` element.",
            "backup_size": "Bytes on disk, as recorded when the file was written (later ReFS block cloning or deduplicating storage savings are not reflected). Source: EM's `BackupSize` element.",
            "data_size": "Bytes read from the source for the file, before compression and deduplication. Source: EM's `DataSize` element.",
            "deduplication_ratio": "Deduplication ratio (e.g. 5.71; 0 or 1 when none). Source: EM's `DeduplicationRatio` element.",
            "compress_ratio": "Compression ratio (e.g. 1.52). Source: EM's `CompressRatio` element.",
            "creation_time_utc": "When the file was created (UTC). Source: EM's `CreationTimeUtc` element (spelled `Utc` on backup files).",
            "placeholder": PLACEHOLDER,
            "deleted_at": DELETED_AT,
            "source": SOURCE,
            "first_loaded_at": FIRST_LOADED_AT,
            "last_loaded_at": LAST_LOADED_AT,
            "run_id": RUN_ID,
        },
    ),
    "restore_points": (
        "Job-level restore points (EM type `RestorePoint`): one backup run of one backup.",
        {
            "uid": UID,
            "href": HREF,
            "backup_uid": "The backup the point belongs to. Source: EM's `Up` link of Type `BackupReference`.",
            "backup_server_uid": SERVER,
            "name": "EM's name, a date like `Jun  5 2025  1:01AM` (do not parse it: read `backup_date_utc`). Source: EM's `Name` attribute.",
            "backup_date_utc": "When the backup run made the point (UTC; about the session's start). Source: EM's `BackupDateUTC` element.",
            "placeholder": PLACEHOLDER,
            "deleted_at": DELETED_AT,
            "source": SOURCE,
            "first_loaded_at": FIRST_LOADED_AT,
            "last_loaded_at": LAST_LOADED_AT,
            "run_id": RUN_ID,
        },
    ),
    "vm_replica_points": (
        "Restore points of VM replicas (EM type `VmReplicaPoint`), read by creation time per backup server.",
        {
            "uid": UID,
            "href": HREF,
            "backup_server_uid": SERVER,
            "replica_uid": "The replica (`urn:veeam:Replica:<guid>`). Source: EM's `Up` link of Type `ReplicaReference`.",
            "name": "`<vm>@<time>` as EM names the point. Source: EM's `Name` attribute.",
            "vm_display_name": "Name of the VM as shown in Veeam. Source: EM's `VmDisplayName` attribute.",
            "vm_name": "VM name; NULL on servers that do not send it (older ones). Source: EM's `VmName` element.",
            "creation_time_utc": "When the point was created (UTC). Source: EM's `CreationTimeUTC` element.",
            "algorithm": "`Full`, `Incremental`, `ReversedIncremental` or `SyntheticFull`, as EM sent it. Source: EM's `Algorithm` element.",
            "point_type": "`Full`, `Increment`, `ReverseIncrement` or `Snapshot`, as EM sent it. Source: EM's `PointType` element.",
            "placeholder": PLACEHOLDER,
            "deleted_at": DELETED_AT,
            "source": SOURCE,
            "first_loaded_at": FIRST_LOADED_AT,
            "last_loaded_at": LAST_LOADED_AT,
            "run_id": RUN_ID,
        },
    ),
    "agent_restore_points": (
        "One agent computer's restore point (EM type `AgentRestorePoint`, EM's own type for computers that Veeam Agent jobs back up, not a `VmRestorePoint`): what a computer can be restored from.",
        {
            "uid": UID,
            "href": HREF,
            "restore_point_uid": "The job-level restore point (of the computer's child backup). Source: EM's `Up` link of Type `RestorePointReference`.",
            "backup_file_uid": "The backup file holding the point; NULL when EM gives no link. Source: EM's `Up` link of Type `BackupFileReference`.",
            "backup_server_uid": SERVER,
            "name": "`<computer>@<time>` as EM names the point. Source: EM's `Name` attribute.",
            "computer_name": "The computer's name: the point's name up to its last `@` (EM sends no computer element); the name its backup task sessions carry in `vm_display_name`. Source: the loader, from EM's `Name` attribute.",
            "creation_time_utc": "When the point was created (UTC). Source: EM's `CreationTimeUTC` element.",
            "algorithm": "`Full`, `Incremental` or `SyntheticFull`, as EM sent it. Source: EM's `Algorithm` element.",
            "point_type": "`Full` or `Increment`, as EM sent it. Source: EM's `PointType` element.",
            "placeholder": PLACEHOLDER,
            "deleted_at": DELETED_AT,
            "source": SOURCE,
            "first_loaded_at": FIRST_LOADED_AT,
            "last_loaded_at": LAST_LOADED_AT,
            "run_id": RUN_ID,
        },
    ),
    "replica_task_sessions": (
        "One VM processed in one replication job session (EM type `ReplicaTaskSession`).",
        {
            "uid": UID,
            "href": HREF,
            "job_session_uid": "The job session the task belongs to. Source: EM's `JobSessionUid` element.",
            "backup_server_uid": SERVER,
            "replica_point_uid": "The replica point the task made; NULL when EM gives no link (not every server does). Source: EM's `Related` link of Type `VmReplicaPoint`.",
            "name": "`<vm>@<start time>` as EM names the task. Source: EM's `Name` attribute.",
            "vm_display_name": "Name of the VM as shown in Veeam. Source: EM's `VmDisplayName` attribute.",
            "creation_time_utc": "When the task started (UTC). Source: EM's `CreationTimeUTC` element.",
            "end_time_utc": "When the task ended (UTC); NULL while pending or in progress. Source: EM's `EndTimeUTC` element.",
            "state": "As EM sent it: `Completed` means finished; anything else (`Pending`, `InProgress`, ...) is unfinished. Source: EM's `State` element.",
            "result": "As EM sent it: `Success`, `Warning`, `Failed`, `None`, or a value EM did not document; not to be trusted before `state` is `Completed` (EM may already say Success). Source: EM's `Result` element.",
            "reason": "Why the task warned or failed, as EM wrote it (may be long); NULL when fine. Source: EM's `Reason` element.",
            "total_size": "The size of the VM processed (its disks) in bytes, not bytes transferred (EM reports none per task); 0 on failed tasks. Source: EM's `TotalSize` element (em-backup-side.md §2).",
            "source": SOURCE,
            "first_loaded_at": FIRST_LOADED_AT,
            "last_loaded_at": LAST_LOADED_AT,
            "run_id": RUN_ID,
        },
    ),
    "vm_restore_points": (
        "One VM's slice of a restore point (EM type `VmRestorePoint`): what a VM can be restored from.",
        {
            "uid": UID,
            "href": HREF,
            "restore_point_uid": "The job-level restore point. Source: EM's `Up` link of Type `RestorePointReference`.",
            "backup_file_uid": "The backup file holding the VM's data; NULL when EM gives no link. Source: EM's `Up` link of Type `BackupFileReference`.",
            "backup_server_uid": SERVER,
            "name": "`<vm>@<time>` as EM names the point. Source: EM's `Name` attribute.",
            "vm_display_name": "Name of the VM as shown in Veeam; NULL on servers that do not send it. Source: EM's `VmDisplayName` attribute.",
            "vm_name": "VM name; NULL on servers that do not send it. Source: EM's `VmName` element.",
            "hierarchy_obj_ref": "The VM's hierarchy reference, e.g. `urn:VMware:Vm:<vcenter>.vm-62228`; equals `backup_task_sessions.vm_uid`; NULL on servers that do not send it. Source: EM's `HierarchyObjRef` element.",
            "creation_time_utc": "When the point was created (UTC). Source: EM's `CreationTimeUTC` element.",
            "algorithm": "`Full`, `Incremental`, `ReversedIncremental` or `SyntheticFull`, as EM sent it. Source: EM's `Algorithm` element.",
            "point_type": "`Full`, `Increment` or `ReverseIncrement`, as EM sent it. Source: EM's `PointType` element.",
            "placeholder": PLACEHOLDER,
            "deleted_at": DELETED_AT,
            "source": SOURCE,
            "first_loaded_at": FIRST_LOADED_AT,
            "last_loaded_at": LAST_LOADED_AT,
            "run_id": RUN_ID,
        },
    ),
    "backup_task_sessions": (
        "One VM (or agent computer) processed in one backup job session (EM type `BackupTaskSession`).",
        {
            "uid": UID,
            "href": HREF,
            "job_session_uid": "The job session the task belongs to. Source: EM's `JobSessionUid` element.",
            "backup_server_uid": SERVER,
            "vm_restore_point_uid": "The VM restore point the task made; NULL when none is known (always for agent computers, whose points are `agent_restore_points`). Source: EM's `Related` link of Type `VmRestorePoint` when it gives one, else the loader's inference (`vm_restore_point_link` says which).",
            "vm_restore_point_link": "Where `vm_restore_point_uid` came from: `link` (EM's `Related` link), `inferred` (EM gave none: a point of the same VM created within the task's time window by a task that ended Success or Warning), or NULL (no point known). An inferred value never replaces a link. Source: the loader.",
            "name": "`<vm>@<start time>` as EM names the task. Source: EM's `Name` attribute.",
            "vm_display_name": "Name of the VM (or agent computer) as shown in Veeam. Source: EM's `VmDisplayName` attribute.",
            "vm_uid": "The VM's hierarchy reference (= `vm_restore_points.hierarchy_obj_ref`); NULL on servers before v10 and for agent computers. Source: EM's `VmUid` element.",
            "creation_time_utc": "When the task started (UTC). Source: EM's `CreationTimeUTC` element.",
            "end_time_utc": "When the task ended (UTC); NULL while pending or in progress. Source: EM's `EndTimeUTC` element.",
            "state": "As EM sent it: `Completed` means finished; anything else (`Pending`, `InProgress`, ...) is unfinished. Source: EM's `State` element.",
            "result": "As EM sent it: `Success`, `Warning`, `Failed`, `None`, or a value EM did not document; not to be trusted before `state` is `Completed` (EM may already say Success). Source: EM's `Result` element.",
            "reason": "Why the task warned or failed, as EM wrote it (may be long); NULL when fine. Source: EM's `Reason` element.",
            "total_size": "The VM's source size (its disks) in bytes: not bytes transferred, not the backup's size; 0 on failed tasks. Source: EM's `TotalSize` element (its documented meaning is disputed: em-backup-side.md §2).",
            "source": SOURCE,
            "first_loaded_at": FIRST_LOADED_AT,
            "last_loaded_at": LAST_LOADED_AT,
            "run_id": RUN_ID,
        },
    ),
}


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name != "postgresql":  # SQLite keeps no comments
        return
    for table, (comment, columns) in COMMENTS.items():
        op.create_table_comment(table, comment)
        for column, text in columns.items():
            op.alter_column(table, column, comment=text)


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, (_, columns) in COMMENTS.items():
        for column in columns:
            op.alter_column(table, column, comment=None)
        op.drop_table_comment(table)
