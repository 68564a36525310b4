"""The entity types the loader reads from Enterprise Manager: one declaration each.

An `EntityType` says everything the rest of the loader needs to know about one EM type: its query
type and `Type` attribute, its warehouse table, the function that builds its own columns, its
parents (which link names them, which foreign-key column holds them), how it is read (in full every
run, or incrementally by a creation-time filter per backup server), its final state if it is a
session, and the documented values of its enum columns. `crawl`, `pipeline`, `load`, `status`,
the benchmark and the data dictionary read `TYPES`; nothing else lists types. Adding a type is
one declaration here (plus its row function in `transform`) and its table in `schema`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from sqlalchemy import Table

from . import schema, transform
from .parse import Link

Columns = Callable[[etree._Element, dict[str, str | None], str | None], dict[str, Any]]


@dataclass(frozen=True)
class Parent:
    """A parent named by a link (and maybe a field) of the entity.

    The parent's UID is the `field` element when the entity has one, else the link's href read as
    `urn:veeam:<type_name>:<last path segment>`. The link is the first one with Rel `rel` whose
    `Type` is `link_type`, or whose href path contains `path` (older servers mistype some links:
    em-backup-side.md §13.2). `required`: an entity without this parent is unreadable.
    """

    column: str
    type_name: str
    link_type: str
    rel: str = "Up"
    field: str | None = None
    path: str | None = None
    required: bool = False

    def link(self, links: Iterable[Link]) -> Link | None:
        for ln in links:
            if ln.rel == self.rel and (
                ln.type == self.link_type or (self.path is not None and self.path in ln.href)
            ):
                return ln
        return None


@dataclass(frozen=True)
class EntityType:
    """One EM entity type and how the loader reads it."""

    name: str  # the query `type=` and the entities' `Type` attribute
    table: str
    columns: Columns  # the type's own columns from (element, {field: text}, href)
    parents: tuple[Parent, ...] = ()
    # Read incrementally: the query filter parameter that compares creation instants
    # ("CreationTime"; "CreationTimeUTC" for backup files) and the column that holds them.
    # None: the type is small inventory, read in full every run.
    window: str | None = None
    time_column: str | None = None
    final_state: str | None = None  # sessions: the State that means finished; every other is re-read
    # task sessions: the filter parameter and column that re-read the tasks of a job session
    session_filter: tuple[str, str] | None = None
    also: tuple[str, ...] = ()  # other `Type` attributes EM gives this type (keyed under `name`'s urn)
    enums: dict[str, frozenset[str]] = field(default_factory=dict)  # column -> documented values

    @property
    def types(self) -> frozenset[str]:
        """`Type` attributes recognised as this entity type."""
        return frozenset((self.name, *self.also))

    @property
    def sort(self) -> str | None:
        """Query sort parameter: creation time keeps paging stable while EM adds sessions."""
        return "CreationTime" if self.window is not None else None


RESULTS = frozenset({"Success", "Warning", "Failed", "None"})
JOB_STATES = frozenset({"Starting", "Working", "Stopping", "Pausing", "Resuming", "Stopped"})
TASK_STATES = frozenset({"Pending", "InProgress", "Completed"})

_SERVER = Parent("backup_server_uid", "BackupServer", "BackupServerReference")

BACKUP_SERVER = EntityType("BackupServer", "backup_servers", transform.backup_server)
REPLICA_JOB_SESSION = EntityType(
    "ReplicaJobSession",
    "replica_job_sessions",
    transform.replica_job_session,
    parents=(_SERVER, Parent("job_uid", "Job", "JobReference", field="JobUid")),
    window="CreationTime",
    time_column="creation_time_utc",
    final_state="Stopped",
    enums={"state": JOB_STATES, "result": RESULTS},
)
VM_REPLICA_POINT = EntityType(
    "VmReplicaPoint",
    "vm_replica_points",
    transform.vm_replica_point,
    parents=(_SERVER, Parent("replica_uid", "Replica", "ReplicaReference")),
    window="CreationTime",
    time_column="creation_time_utc",
    enums={
        "algorithm": frozenset({"Full", "Incremental", "ReversedIncremental", "SyntheticFull"}),
        "point_type": frozenset({"Full", "Increment", "ReverseIncrement", "Snapshot"}),
    },
)
REPLICA_TASK_SESSION = EntityType(
    "ReplicaTaskSession",
    "replica_task_sessions",
    transform.replica_task_session,
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
    window="CreationTime",
    time_column="creation_time_utc",
    final_state="Completed",
    session_filter=("JobSessionUid", "job_session_uid"),
    enums={"state": TASK_STATES, "result": RESULTS},
)

# Query order: parents before children, so that most parents are in the warehouse before a child names them.
TYPES: dict[str, EntityType] = {
    t.name: t for t in (BACKUP_SERVER, REPLICA_JOB_SESSION, VM_REPLICA_POINT, REPLICA_TASK_SESSION)
}


def register(entity_type: EntityType) -> None:
    """Add a type (after the ones it depends on); its table must exist in `schema.metadata`."""
    TYPES[entity_type.name] = entity_type


def by_table(table: str) -> EntityType:
    """The entity type stored in `table`. Raises KeyError."""
    for t in TYPES.values():
        if t.table == table:
            return t
    raise KeyError(table)


def tables() -> list[Table]:
    """The entity tables, parents before children."""
    return [schema.table(t.table) for t in TYPES.values()]


def incremental() -> list[EntityType]:
    return [t for t in TYPES.values() if t.window is not None]


def inventory() -> list[EntityType]:
    return [t for t in TYPES.values() if t.window is None]
