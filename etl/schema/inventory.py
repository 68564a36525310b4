"""What EM lists whole every run: backup servers, jobs, repositories (with their space per run), backups and
replicas. Backups and replicas name no job: the loader works theirs out (`_job_by_filter`)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Integer, String, Table, Text

from .columns import (
    DERIVED,
    KEPT,
    UTCDateTime,
    _deleted_at,
    _href,
    _load_metadata,
    _placeholder,
    _server,
    _source,
    _uid,
    metadata,
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
