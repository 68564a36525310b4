"""The entity types the loader reads from Enterprise Manager, one `EntityType` declaration each;
nothing else lists types. Adding a type is one declaration here, its row function in `transform`
and its table in `schema`. Imports only transform and parse (schema lazily, for `tables()`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lxml import etree

from . import transform
from .parse import Link

if TYPE_CHECKING:
    from sqlalchemy import Table

# EM roles (em-api.md, "Roles: what an account may read"). EM authorises per query type and resource:
# a Portal User reads every session, task, point, file, backup, repository, replica and backup server
# query, but not the job types (nor /jobs, /agents/jobs/{ID}, /nas/jobs), which need a Portal
# Administrator; a VM Restore Operator cannot even read backup servers, backup job sessions or backup
# task sessions. A refused read answers 403.
PORTAL_ADMINISTRATOR = "Portal Administrator"
PORTAL_USER = "Portal User"

Columns = Callable[[etree._Element, dict[str, str | None], str | None, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Parent:
    """A parent named by a link (and maybe a field) of the entity.

    The parent's UID is the `field` element when the entity has one, else the link's href read as
    `urn:veeam:<type_name>:<last path segment>`. The link is the first one with Rel `rel` whose
    `Type` is `link_type`, or whose Name is `link_name` (the link to an agent child backup's
    parent is typed like the entity it names: em-backup-side.md §5). `required`: an entity without
    this parent is unreadable.
    """

    column: str
    type_name: str
    link_type: str
    rel: str = "Up"
    field: str | None = None
    link_name: str | None = None
    required: bool = False

    def link(self, links: Iterable[Link]) -> Link | None:
        for ln in links:
            if ln.rel == self.rel and (
                ln.type == self.link_type or (self.link_name is not None and ln.name == self.link_name)
            ):
                return ln
        return None


@dataclass(frozen=True)
class ByParent:
    """EM lists the entities of a type by their parent: `filter` is the query filter parameter that
    names the parent's UID (`BackupUid`, `RestorePointId`, …) and `column` the entity's column that
    holds it (its `Parent` declaration says which type the parent is). Used to read the children of a
    parent new to the warehouse whatever their creation times, and the tasks of a job session read
    again (etl.pipeline)."""

    filter: str
    column: str


@dataclass(frozen=True)
class EntityType:
    """One EM entity type and how the loader reads it: its query type and `Type` attribute, its
    warehouse table, the function that builds its own columns, its parents (which link names them,
    which foreign-key column holds them), how it is read (in full every run, or incrementally by a
    creation-time filter per backup server), how EM lists it by parent (`ByParent`: the children of
    a parent new to the warehouse, the tasks of a session), its final state if it is a session, the
    documented values of its enum columns, how its job is found, and the EM role that reads it."""

    name: str  # the query `type=` and the entities' `Type` attribute
    table: str
    columns: Columns  # the type's own columns from (element, {field: text}, href)
    parents: tuple[Parent, ...] = ()
    # Read incrementally: the query filter field that compares creation instants
    # ("CreationTime"; "CreationTimeUTC" for backup files) and the column that holds them.
    # None: the type is small inventory, read in full every run.
    time_filter: str | None = None
    time_column: str | None = None
    final_state: str | None = None  # sessions: the State that means finished; every other is re-read
    # EM lists this type's entities by their parent (see ByParent); None: it does not
    by_parent: ByParent | None = None
    # other `Type` attributes EM gives this type (keyed under the `keyed_as` urn type)
    also_types: tuple[str, ...] = ()
    # the urn type rows are keyed by when it is not `name` (agent jobs are keyed as their sessions
    # name them: urn:veeam:Job:{guid})
    key_type_name: str | None = None
    enums: dict[str, frozenset[str]] = field(default_factory=dict)  # column -> documented values
    # a table that gets one row per entity per run that read it, for trends: (table, key column)
    snapshot: tuple[str, str] | None = None
    # The relation to jobs is not in the entity: EM answers `type=<name>&filter=JobUid==<job>`
    # (em-backup-side.md §5, §9). The job types whose query can answer it (None: no such relation).
    job_types: frozenset[str] | None = None
    # The types, by their declared parents, from this type's rows to the job sessions whose job owns
    # them: EM's own links tell a row's job without a query (etl.derive.jobs_by_links)
    jobs_linked_through: tuple[str, ...] = ()
    max_page_size: int | None = None  # entities a page at most, whatever --page-size says
    # the least EM role that may read the type (its query and its resources); an account without it
    # is answered 403 and the run skips the type, naming this role
    role: str = PORTAL_USER

    @property
    def parent_type(self) -> str | None:
        """The type `by_parent` names (the type of the `Parent` whose column it is), or None."""
        if self.by_parent is None:
            return None
        return next(p.type_name for p in self.parents if p.column == self.by_parent.column)

    @property
    def keyed_as(self) -> str:
        """The urn type of the uids rows are keyed by: `key_type_name`, else `name`."""
        return self.key_type_name or self.name

    @property
    def types(self) -> frozenset[str]:
        """`Type` attributes recognised as this entity type."""
        return frozenset((self.name, *self.also_types))

    def page_size(self, configured: int) -> int:
        """Entities to ask for a page: the configured page size, capped for large entities."""
        return min(configured, self.max_page_size or configured)

    @property
    def sort(self) -> str | None:
        """Query sort parameter: creation time keeps paging stable while EM adds sessions."""
        return self.time_filter


RESULTS = frozenset({"Success", "Warning", "Failed", "None"})
JOB_STATES = frozenset({"Starting", "Working", "Stopping", "Pausing", "Resuming", "Stopped"})
TASK_STATES = frozenset({"Pending", "InProgress", "Completed"})
JOB_TYPES = frozenset(
    {
        "Backup",
        "BackupCopy",
        "ImmediateBackupCopy",
        "ImmediateBackupCopyWorker",
        "Replica",
        "AgentBackup",
        "AgentManagement",
        "NasBackup",
    }
)
PLATFORMS = frozenset(
    {"VMware", "HyperV", "Hyperv", "vCloud", "AgentForLinux", "AgentForWindows", "CustomPlatform"}
)
ALGORITHMS = frozenset({"Full", "Incremental", "ReversedIncremental", "SyntheticFull"})
POINT_TYPES = frozenset({"Full", "Increment", "ReverseIncrement", "Snapshot"})

_SERVER = Parent("backup_server_uid", "BackupServer", "BackupServerReference")
_REPOSITORY = Parent("repository_uid", "Repository", "RepositoryReference")
_BACKUP = Parent("backup_uid", "Backup", "BackupReference")
_SESSION = {"state": JOB_STATES, "result": RESULTS, "job_type": JOB_TYPES}
_TASK = {"state": TASK_STATES, "result": RESULTS}

# A job entity lists every VM the job includes (JobInfo), tens of KB for a job of a hundred VMs: a
# page of 500 large jobs is tens of MB of body and several times that of parsed tree, with
# several pages fetched and parsed at once, and nears the 64 MB body limit. 100 a page, EM's own default
# page size (em-api.md, "Query service"), keeps a page of jobs about a MB on the benchmark's estate.
JOBS_PER_PAGE = 100

# --- inventory: small, read in full every run ------------------------------------------------------
BACKUP_SERVER = EntityType("BackupServer", "backup_servers", transform.backup_server)
JOB = EntityType(
    "Job",
    "jobs",
    transform.job,
    parents=(_SERVER,),
    # agent jobs are AgentBackupJob entities (UID urn:veeam:AgentBackupJob:…) and file-share jobs
    # NasJob entities (urn:veeam:NasJob:…) whose sessions name them urn:veeam:Job:… (em-backup-side.md
    # §10): keyed as the sessions name them; a session's job link may lead to either
    also_types=("AgentBackupJob", "NasJob"),
    enums={"job_type": JOB_TYPES, "platform": PLATFORMS},
    max_page_size=JOBS_PER_PAGE,
    role=PORTAL_ADMINISTRATOR,
)
# Agent jobs have their own query type (`type=Job` lists the others only: em-backup-side.md §7, §10)
AGENT_BACKUP_JOB = EntityType(
    "AgentBackupJob",
    "jobs",
    transform.job,
    parents=(_SERVER,),
    key_type_name="Job",
    enums={"job_type": JOB_TYPES, "platform": PLATFORMS},
    max_page_size=JOBS_PER_PAGE,
    role=PORTAL_ADMINISTRATOR,
)
# File-share (NAS) jobs live under /nas/jobs, with a query type of their own (em-api.md, "Roles";
# em-backup-side.md §12): `<NASJob Type="NasJob">`, no JobType or Platform ("Agent computers and file
# shares"). Their sessions (JobType NasBackup) name them urn:veeam:Job:<guid>.
NAS_JOB = EntityType(
    "NasJob",
    "jobs",
    transform.job,
    parents=(_SERVER,),
    key_type_name="Job",
    max_page_size=JOBS_PER_PAGE,
    role=PORTAL_ADMINISTRATOR,
)
REPOSITORY = EntityType(
    "Repository",
    "repositories",
    transform.repository,
    parents=(_SERVER,),
    enums={
        "kind": frozenset(
            {
                "WindowsLocal",
                "LinuxLocal",
                "CifsShare",
                "DDBoost",
                "Cloud",
                "HPStoreOnce",
                "ExaGrid",
                "Foreign",
                "SanSnapshot",
                "HPStoreOnceIntegration",
                "Extendable",
                "Quantum",
                "Nfs",
            }
        )
    },
    snapshot=("repository_space", "repository_uid"),
)
BACKUP = EntityType(
    "Backup",
    "backups",
    transform.backup,
    # an agent ChildBackup's second Up link (Type="Backup", Name="Parent Backup") names its ParentBackup
    parents=(
        _REPOSITORY,
        _SERVER,
        Parent("parent_backup_uid", "Backup", "Backup", link_name="Parent Backup"),
    ),
    enums={"platform": PLATFORMS, "backup_type": frozenset({"Standard", "ParentBackup", "ChildBackup"})},
    job_types=JOB_TYPES - {"Replica"},
    # a backup holds the restore points whose VM restore points its job's backup tasks made
    jobs_linked_through=("RestorePoint", "VmRestorePoint", "BackupTaskSession", "BackupJobSession"),
)
REPLICA = EntityType(
    "Replica",
    "replicas",
    transform.replica,
    parents=(_REPOSITORY, _SERVER),
    enums={"platform": PLATFORMS},
    job_types=frozenset({"Replica"}),
    # a replica holds the replica points its job's task sessions link (`Related`)
    jobs_linked_through=("VmReplicaPoint", "ReplicaTaskSession", "ReplicaJobSession"),
)

# --- the replication side ----------------------------------------------------------------------------
REPLICA_JOB_SESSION = EntityType(
    "ReplicaJobSession",
    "replica_job_sessions",
    transform.job_session,
    parents=(_SERVER, Parent("job_uid", "Job", "JobReference", field="JobUid")),
    time_filter="CreationTime",
    time_column="creation_time_utc",
    final_state="Stopped",
    enums=_SESSION,
)
VM_REPLICA_POINT = EntityType(
    "VmReplicaPoint",
    "vm_replica_points",
    transform.vm_replica_point,
    parents=(_SERVER, Parent("replica_uid", "Replica", "ReplicaReference")),
    time_filter="CreationTime",
    time_column="creation_time_utc",
    enums={"algorithm": ALGORITHMS, "point_type": POINT_TYPES},
    by_parent=ByParent("ReplicaUid", "replica_uid"),
)
REPLICA_TASK_SESSION = EntityType(
    "ReplicaTaskSession",
    "replica_task_sessions",
    transform.task_session,
    parents=(
        Parent(
            "job_session_uid",
            "ReplicaJobSession",
            "ReplicaJobSessionReference",
            field="JobSessionUid",
            required=True,
        ),
        _SERVER,
        Parent("replica_point_uid", "VmReplicaPoint", "VmReplicaPoint", rel="Related"),
    ),
    time_filter="CreationTime",
    time_column="creation_time_utc",
    final_state="Completed",
    by_parent=ByParent("JobSessionUid", "job_session_uid"),
    enums=_TASK,
)

# --- the backup side ---------------------------------------------------------------------------------
BACKUP_JOB_SESSION = EntityType(
    "BackupJobSession",
    "backup_job_sessions",
    transform.job_session,
    parents=(
        _SERVER,
        Parent("job_uid", "Job", "JobReference", field="JobUid"),
        # AgentManagement (per-computer) sessions: `Up` to their AgentBackup session, "Parent session"
        Parent("parent_session_uid", "BackupJobSession", "BackupJobSessionReference"),
    ),
    time_filter="CreationTime",
    time_column="creation_time_utc",
    final_state="Stopped",
    enums=_SESSION,
)
RESTORE_POINT = EntityType(
    "RestorePoint",
    "restore_points",
    transform.restore_point,
    parents=(_BACKUP, _SERVER),
    time_filter="CreationTime",  # the filter is CreationTime although the element is BackupDateUTC
    time_column="backup_date_utc",
    by_parent=ByParent("BackupUid", "backup_uid"),
)
BACKUP_FILE = EntityType(
    "BackupFile",
    "backup_files",
    transform.backup_file,
    parents=(_BACKUP, _SERVER),
    time_filter="CreationTimeUTC",  # the one type whose time filter is named CreationTimeUTC
    time_column="creation_time_utc",
    enums={"file_type": frozenset({"vbk", "vib", "vrb"})},
    by_parent=ByParent("BackupUid", "backup_uid"),
)
VM_RESTORE_POINT = EntityType(
    "VmRestorePoint",
    "vm_restore_points",
    transform.vm_restore_point,
    parents=(
        Parent("restore_point_uid", "RestorePoint", "RestorePointReference"),
        Parent("backup_file_uid", "BackupFile", "BackupFileReference"),
        _SERVER,
    ),
    time_filter="CreationTime",
    time_column="creation_time_utc",
    enums={"algorithm": ALGORITHMS, "point_type": POINT_TYPES},
    # `RestorePointId` (a urn), not …Uid: Veeam's get_query_vmrestorepoint (em-backup-side.md §3)
    by_parent=ByParent("RestorePointId", "restore_point_uid"),
)
# An agent computer's restore point is not a VmRestorePoint but a type of its own (em-backup-side.md
# §10, "Agent computers and file shares"); the query also takes a BackupUid filter.
AGENT_RESTORE_POINT = EntityType(
    "AgentRestorePoint",
    "agent_restore_points",
    transform.agent_restore_point,
    parents=(
        Parent("restore_point_uid", "RestorePoint", "RestorePointReference"),
        Parent("backup_file_uid", "BackupFile", "BackupFileReference"),
        _SERVER,
    ),
    time_filter="CreationTime",
    time_column="creation_time_utc",
    enums={"algorithm": ALGORITHMS, "point_type": POINT_TYPES},
    # like a VM restore point's, its query takes `RestorePointId` (em-backup-side.md §10)
    by_parent=ByParent("RestorePointId", "restore_point_uid"),
)
BACKUP_TASK_SESSION = EntityType(
    "BackupTaskSession",
    "backup_task_sessions",
    transform.backup_task_session,
    parents=(
        Parent(
            "job_session_uid",
            "BackupJobSession",
            "BackupJobSessionReference",
            field="JobSessionUid",
            required=True,
        ),
        _SERVER,
        Parent("vm_restore_point_uid", "VmRestorePoint", "VmRestorePoint", rel="Related"),
    ),
    time_filter="CreationTime",
    time_column="creation_time_utc",
    final_state="Completed",
    by_parent=ByParent("JobSessionUid", "job_session_uid"),
    enums=_TASK,
)

# Query order: parents before children, so that most parents are in the warehouse before a child names them.
TYPES: dict[str, EntityType] = {
    t.name: t
    for t in (
        BACKUP_SERVER,
        JOB,
        AGENT_BACKUP_JOB,
        NAS_JOB,
        REPOSITORY,
        BACKUP,
        REPLICA,
        REPLICA_JOB_SESSION,
        VM_REPLICA_POINT,
        REPLICA_TASK_SESSION,
        BACKUP_JOB_SESSION,
        RESTORE_POINT,
        BACKUP_FILE,
        VM_RESTORE_POINT,
        AGENT_RESTORE_POINT,
        BACKUP_TASK_SESSION,
    )
}


def register(entity_type: EntityType) -> None:
    """Add a type (after the ones it depends on); its table must exist in `schema.metadata`."""
    TYPES[entity_type.name] = entity_type


def parent_tables(types: Iterable[EntityType]) -> set[str]:
    """The tables `types` name as parents (relations to types not declared here left out)."""
    return {TYPES[p.type_name].table for t in types for p in t.parents if p.type_name in TYPES}


def by_table(table: str) -> EntityType:
    """The entity type stored in `table`. Raises KeyError."""
    for t in TYPES.values():
        if t.table == table:
            return t
    raise KeyError(table)


def tables() -> list[Table]:
    """The entity tables, parents before children (a table two types share, once)."""
    from . import schema  # here: worker processes import this module and need no SQLAlchemy

    return [schema.table(name) for name in dict.fromkeys(t.table for t in TYPES.values())]


def incremental() -> list[EntityType]:
    """The types read by creation time (`time_filter`), in load order."""
    return [t for t in TYPES.values() if t.time_filter is not None]
