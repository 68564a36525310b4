"""What a machine can be restored from, as EM calls it: replica points, job-level restore points, the
backup files on repositories, and each VM's and each agent computer's restore points."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Index, String, Table, Text

from .columns import (
    DERIVED,
    UTCDateTime,
    _deleted_at,
    _href,
    _load_metadata,
    _placeholder,
    _server,
    _uid,
    metadata,
)

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
