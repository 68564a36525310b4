"""Pure: one small function per EM entity type turning an lxml element into a warehouse row.

A row is a plain dict keyed by the table's columns (without the load metadata). Alongside it we
return the links to the row's parents, so the crawl can fetch or record a parent it has not seen.
Unreadable fields raise DataError (the entity is quarantined, never half-written). No I/O.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from typing import NamedTuple

from lxml import etree

from . import parse
from .errors import DataError
from .parse import Link

JOB_STATES = frozenset(
    {"Starting", "Working", "Stopping", "Pausing", "Resuming", "Stopped", "Postprocessing"}
)
TASK_STATES = frozenset({"Pending", "InProgress", "Completed"})
RESULTS = frozenset({"Success", "Warning", "Failed", "None"})
ALGORITHMS = frozenset({"Full", "Incremental", "ReversedIncremental", "SyntheticFull"})
POINT_TYPES = frozenset({"Full", "Increment", "ReverseIncrement", "Snapshot"})


class Entity(NamedTuple):
    table: str
    row: dict
    parents: dict[str, Link]  # foreign-key column -> the link that names the parent


class Rows(NamedTuple):
    """Rows of one table as tuples in `columns` order, with the links naming their parents.

    The form a page's entities travel in, from a reader process to the loader: a list of flat
    tuples pickles several times cheaper than a list of dicts, and the loader writes such tuples
    as they are. Only the first link per parent uid is kept: it is all a missing parent needs.
    """

    table: str
    columns: tuple[str, ...]
    values: list[tuple]
    # foreign-key column -> {parent uid in that column: a link naming it, as a plain tuple (a tenth
    # of the pickling cost of a Link; most are never needed)}
    links: dict[str, dict[str, tuple]]

    def link(self, column: str, uid: str) -> Link | None:
        """The link naming parent `uid` of `column`, if the rows carry one."""
        fields = self.links.get(column, {}).get(uid)
        return None if fields is None else Link(*fields)

    def column(self, name: str) -> list:
        """Every row's value of `name` (all None when the rows lack that column)."""
        if name not in self.columns:
            return [None] * len(self.values)
        i = self.columns.index(name)
        return [v[i] for v in self.values]


def rows(table: str, dicts: list[dict], links: Iterable[dict[str, Link]] = ()) -> Rows:
    """Rows from row dicts of one table (the keys of the first row are the columns; every row has
    them); `links` are the entities' {column: link} maps, if any."""
    if not dicts:
        return Rows(table, (), [], {})
    columns = tuple(dicts[0])
    if len(columns) == 1:
        values = [(d[columns[0]],) for d in dicts]
    else:
        get = operator.itemgetter(*columns)
        values = [get(d) for d in dicts]
    named: dict[str, dict[str, tuple]] = {}
    for d, parents in zip(dicts, links, strict=False):
        for column, link in parents.items():
            named.setdefault(column, {}).setdefault(d[column], tuple(link))
    return Rows(table, columns, values, named)


def rows_of(table: str, entities: list[Entity]) -> Rows:
    return rows(table, [e.row for e in entities], [e.parents for e in entities])


def _enum(value: str | None, allowed: frozenset[str], field: str, url: str | None) -> str | None:
    if value is not None and value not in allowed:
        raise DataError(f"unknown {field} {value[:60]!r}", url)
    return value


def _head(el: etree._Element) -> tuple[dict, dict[str, str | None], dict[tuple[str, str], Link], str | None]:
    """(row with uid/href/name, fields, {(Rel, Type): first such link}, href) of an entity."""
    url = el.get("Href")
    uid = el.get("UID")
    if not uid or not uid.startswith("urn:veeam:"):
        raise DataError(f"{parse.local(el)} without a valid UID attribute", url)
    return ({"uid": uid, "href": url, "name": el.get("Name")}, *parse.content(el), url)


def _up(links: dict[tuple[str, str], Link], link_type: str, rel: str = "Up") -> Link | None:
    return links.get((rel, link_type))


def _parent(parents: dict[str, Link], column: str, link: Link | None, type_name: str) -> str | None:
    if link is None:
        return None
    parents[column] = link
    return parse.uid_from_href(link.href, type_name)


def backup_server(el: etree._Element) -> Entity:
    row, f, _, url = _head(el)
    row.update(
        description=f.get("Description"),
        port=parse.integer(f.get("Port"), url, 32),
        version=f.get("Version"),
        wcf_port=parse.integer(f.get("WcfPort"), url, 32),
        vbr_certificate_thumbprint=f.get("VbrCertificateThumbprint"),
        placeholder=False,
    )
    return Entity("backup_servers", row, {})


def replica_job_session(el: etree._Element) -> Entity:
    row, f, links, url = _head(el)
    parents: dict[str, Link] = {}
    job_link = _up(links, "JobReference")
    row.update(
        backup_server_uid=_parent(
            parents, "backup_server_uid", _up(links, "BackupServerReference"), "BackupServer"
        ),
        job_uid=f.get("JobUid") or (job_link and parse.uid_from_href(job_link.href, "Job")),
        job_name=f.get("JobName"),
        job_type=f.get("JobType"),
        creation_time_utc=parse.utc(f.get("CreationTimeUTC"), url),
        end_time_utc=parse.utc(f.get("EndTimeUTC"), url),
        state=_enum(f.get("State"), JOB_STATES, "State", url),
        result=_enum(f.get("Result"), RESULTS, "Result", url),
        progress=parse.integer(f.get("Progress"), url, 32),
        is_retry=parse.boolean(f.get("IsRetry"), url),
        failure_message=f.get("FailureMessage"),
        placeholder=False,
    )
    return Entity("replica_job_sessions", row, parents)


def replica_task_session(el: etree._Element) -> Entity:
    row, f, links, url = _head(el)
    parents: dict[str, Link] = {}
    job_link = _up(links, "ReplicaJobSessionReference")
    job_uid = _parent(parents, "job_session_uid", job_link, "ReplicaJobSession")
    row.update(
        job_session_uid=f.get("JobSessionUid") or job_uid,
        backup_server_uid=_parent(
            parents, "backup_server_uid", _up(links, "BackupServerReference"), "BackupServer"
        ),
        replica_point_uid=_parent(
            parents, "replica_point_uid", _up(links, "VmReplicaPoint", "Related"), "VmReplicaPoint"
        ),
        vm_display_name=el.get("VmDisplayName"),
        creation_time_utc=parse.utc(f.get("CreationTimeUTC"), url),
        end_time_utc=parse.utc(f.get("EndTimeUTC"), url),
        state=_enum(f.get("State"), TASK_STATES, "State", url),
        result=_enum(f.get("Result"), RESULTS, "Result", url),
        reason=f.get("Reason"),
        total_size=parse.integer(f.get("TotalSize"), url),
    )
    if row["job_session_uid"] is None:
        raise DataError("ReplicaTaskSession without JobSessionUid or an Up link to its job session", url)
    return Entity("replica_task_sessions", row, parents)


def vm_replica_point(el: etree._Element) -> Entity:
    row, f, links, url = _head(el)
    parents: dict[str, Link] = {}
    replica = _up(links, "ReplicaReference")
    row.update(
        backup_server_uid=_parent(
            parents, "backup_server_uid", _up(links, "BackupServerReference"), "BackupServer"
        ),
        replica_uid=replica and parse.uid_from_href(replica.href, "Replica"),
        vm_display_name=el.get("VmDisplayName"),
        vm_name=f.get("VmName"),
        creation_time_utc=parse.utc(f.get("CreationTimeUTC"), url),
        algorithm=_enum(f.get("Algorithm"), ALGORITHMS, "Algorithm", url),
        point_type=_enum(f.get("PointType"), POINT_TYPES, "PointType", url),
        placeholder=False,
    )
    return Entity("vm_replica_points", row, parents)


# EM type name -> (table, row function). The crawl queries these types in this order.
ENTITY_TYPES: dict[str, tuple[str, Callable[[etree._Element], Entity]]] = {
    "BackupServer": ("backup_servers", backup_server),
    "ReplicaJobSession": ("replica_job_sessions", replica_job_session),
    "VmReplicaPoint": ("vm_replica_points", vm_replica_point),
    "ReplicaTaskSession": ("replica_task_sessions", replica_task_session),
}
TYPE_OF_TABLE = {table: type_name for type_name, (table, _) in ENTITY_TYPES.items()}


def entity(type_name: str, el: etree._Element) -> Entity:
    return ENTITY_TYPES[type_name][1](el)


def placeholder(table: str, link: Link) -> dict:
    """A parent EM would not give us, recorded from what the child's link says."""
    return {
        "uid": parse.uid_from_href(link.href, TYPE_OF_TABLE[table]),
        "href": link.href,
        "name": link.name,
        "placeholder": True,
    }
