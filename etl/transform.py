"""Pure: EM entities in, warehouse rows out. `read_page` (the unit of work of the worker processes)
turns a page's bytes into its rows (`TableRows`), its unreadable entities (`QuarantineRecord`) and
its paging; `entity` one element into a row, by the type's column function (one per type, below)
and its declared parents. No I/O; imports only the XML vocabulary (etl.parse)."""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from lxml import etree

from . import parse
from .errors import DataError
from .parse import Link

if TYPE_CHECKING:
    from .registry import EntityType

EXCERPT = 1000  # characters of an unreadable entity kept for the quarantine table


class Entity(NamedTuple):
    table: str
    row: dict[str, Any]
    parents: dict[str, Link]  # foreign-key column -> the link that names the parent


class QuarantineRecord(NamedTuple):
    """An entity whose fields could not be read: quarantined, counted, never half-written."""

    type_name: str
    href: str
    uid: str | None
    error: str
    excerpt: str


class TableRows(NamedTuple):
    """Rows of one table as tuples in `columns` order, with the links naming their parents.

    The form a page's entities travel in, from a worker process to the loader: a list of flat
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


class Page(NamedTuple):
    """One query page, read: its rows, the entities that could not be read, and where the next is."""

    url: str
    rows: TableRows
    quarantined: list[QuarantineRecord]
    paging: parse.Paging

    @property
    def has_more(self) -> bool:
        """Whether the query has pages after this one (EM's PagesCount, else a Next link)."""
        if self.paging.pages is not None:
            return self.paging.pages > (self.paging.page or 1)
        return bool(self.paging.next_href and self.rows.values)


def table_rows(table: str, dicts: list[dict], links: Iterable[dict[str, Link]] = ()) -> TableRows:
    """A TableRows from row dicts of one table (the keys of the first row are the columns; every row
    has them); `links` are the entities' {column: link} maps, if any."""
    if not dicts:
        return TableRows(table, (), [], {})
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
    return TableRows(table, columns, values, named)


def rows_of(table: str, entities: list[Entity]) -> TableRows:
    """The entities' rows (of one table) and the links naming their parents."""
    return table_rows(table, [e.row for e in entities], [e.parents for e in entities])


def entity(entity_type: EntityType, el: etree._Element) -> Entity:
    """One entity element as a row of `entity_type.table`. Raises DataError when a field cannot be read.

    uid, href and name come from the element's attributes; each declared parent's column from its
    field or link; the rest from the type's column function. A `Type` listed in `also_types`, or a type
    with a `key_type_name`, is keyed under that urn type (an AgentBackupJob's sessions reference it as
    `urn:veeam:Job:{guid}`).
    """
    url = el.get("Href")
    uid = el.get("UID")
    if not uid or not uid.startswith("urn:veeam:"):
        raise DataError(f"{parse.local(el)} without a valid UID attribute", url)
    uid = key_uid(entity_type, uid)
    fields, found = parse.content(el)
    row: dict[str, Any] = {"uid": uid, "href": url, "name": el.get("Name")}
    parents: dict[str, Link] = {}
    for parent in entity_type.parents:
        link = parent.link(found)
        value = fields.get(parent.field) if parent.field else None
        if link is not None:
            parents[parent.column] = link
            if value is None:
                value = parse.uid_from_href(link.href, parent.type_name)
        if value is None and parent.required:
            raise DataError(
                f"{entity_type.name} without {parent.field or 'a link to its ' + parent.type_name}", url
            )
        row[parent.column] = value
    row.update(entity_type.columns(el, fields, url, row))
    return Entity(entity_type.table, row, parents)


def key_uid(entity_type: EntityType, uid: str) -> str:
    """The uid a row of `entity_type` is keyed by: `uid` itself, or for a type with `also_types` or a
    `key_type_name`, the same guid under that urn type (an AgentBackupJob's sessions name it
    `urn:veeam:Job:{guid}`)."""
    keyed_as = entity_type.keyed_as
    if (entity_type.also_types or entity_type.key_type_name) and not uid.startswith(f"urn:veeam:{keyed_as}:"):
        return f"urn:veeam:{keyed_as}:{uid.rsplit(':', 1)[-1]}"
    return uid


def read(
    root: etree._Element, entity_type: EntityType, url: str, elements=None
) -> tuple[list[Entity], list[QuarantineRecord]]:
    """Every entity of `entity_type` in a document (or the given `elements`), transformed;
    unreadable ones become QuarantineRecords."""
    entities, quarantined = [], []
    for el in parse.entities(root, entity_type.types) if elements is None else elements:
        try:
            entities.append(entity(entity_type, el))
        except DataError as exc:
            excerpt = etree.tostring(el, encoding="unicode")[:EXCERPT]
            quarantined.append(
                QuarantineRecord(entity_type.name, el.get("Href") or url, el.get("UID"), str(exc), excerpt)
            )
    return entities, quarantined


def read_page(body: bytes, entity_type: EntityType, url: str) -> Page:
    """A query page's body in (asked for in the Entities format), the page read out.

    Raises ParseError (retriable: the body may be cut off), HostileDocument, UnexpectedDocument (a
    page of the wrong shape: see parse.query_entities). What it returns is compact: in a worker
    process, pickling it back is part of the price of every page.
    """
    root = parse.em_document(body, url)
    elements = parse.query_entities(root, entity_type.types, url)
    entities, quarantined = read(root, entity_type, url, elements)
    return Page(url, rows_of(entity_type.table, entities), quarantined, parse.paging(root, url))


def read_refs(body: bytes, entity_type: EntityType, url: str) -> Page:
    """A query page's body in, asked for in the References format: its rows are the UIDs alone (one
    column, `uid`, keyed as the type's rows are). Raises what `read_page` raises (see
    parse.query_refs for the shapes refused)."""
    root = parse.em_document(body, url)
    uids = parse.query_refs(root, entity_type.types | {entity_type.keyed_as}, url)
    values = [(key_uid(entity_type, uid),) for uid in uids]
    return Page(url, TableRows(entity_type.table, ("uid",), values, {}), [], parse.paging(root, url))


def placeholder(link: Link, uid: str) -> dict[str, Any]:
    """A parent EM would not give us, recorded from what the child's link says."""
    return {"uid": uid, "href": link.href, "name": link.name, "placeholder": True}


# --- one small function per EM type: its own columns (parents come from its declaration) -----------
# Each takes the element, its fields ({element name: text}), its href and the row so far (uid,
# href, name and the parent columns), and returns the type's other columns.

Fields = dict[str, str | None]


def backup_server(el: etree._Element, f: Fields, url: str | None, row: dict) -> dict[str, Any]:
    return {
        "description": f.get("Description"),
        "port": parse.integer(f.get("Port"), url, 32),
        "version": f.get("Version"),
        "wcf_port": parse.integer(f.get("WcfPort"), url, 32),
        "vbr_certificate_thumbprint": f.get("VbrCertificateThumbprint"),
        "placeholder": False,
    }


def job_session(el: etree._Element, f: Fields, url: str | None, row: dict) -> dict[str, Any]:
    """A backup or replica job session: the same JobSessionEntityType fields (em-backup-side.md §1)."""
    return {
        "job_uid": f.get("JobUid"),
        "job_name": f.get("JobName"),
        "job_type": f.get("JobType"),
        "creation_time_utc": parse.utc(f.get("CreationTimeUTC"), url),
        "end_time_utc": parse.utc(f.get("EndTimeUTC"), url),
        "state": f.get("State"),
        "result": f.get("Result"),
        "progress": parse.integer(f.get("Progress"), url, 32),
        "is_retry": parse.boolean(f.get("IsRetry"), url),
        "failure_message": f.get("FailureMessage"),
        "placeholder": False,
    }


def task_session(el: etree._Element, f: Fields, url: str | None, row: dict) -> dict[str, Any]:
    """A replica task session, and what a backup task session shares with it."""
    return {
        "vm_display_name": el.get("VmDisplayName"),
        "creation_time_utc": parse.utc(f.get("CreationTimeUTC"), url),
        "end_time_utc": parse.utc(f.get("EndTimeUTC"), url),
        "state": f.get("State"),
        "result": f.get("Result"),
        "reason": f.get("Reason"),
        "total_size": parse.integer(f.get("TotalSize"), url),
    }


def vm_replica_point(el: etree._Element, f: Fields, url: str | None, row: dict) -> dict[str, Any]:
    return {
        "vm_display_name": el.get("VmDisplayName"),
        "vm_name": f.get("VmName"),
        "creation_time_utc": parse.utc(f.get("CreationTimeUTC"), url),
        "algorithm": f.get("Algorithm"),
        "point_type": f.get("PointType"),
        "placeholder": False,
    }


def job(el: etree._Element, f: Fields, url: str | None, row: dict) -> dict[str, Any]:
    """Job, AgentBackupJob and NasJob: the scalar fields; schedule and job-info blocks are
    version-shaped (`Standart`, `ImmediateCopyMode`, …: em-backup-side.md §7) and left out. A NasJob
    has no JobType or Platform (em-backup-side.md, "Agent computers and file shares"): NULL."""
    return {
        "job_type": f.get("JobType"),
        "platform": f.get("Platform"),
        "description": f.get("Description"),
        "schedule_configured": parse.boolean(f.get("ScheduleConfigured"), url),
        "schedule_enabled": parse.boolean(f.get("ScheduleEnabled"), url),
        "next_run_utc": parse.utc(f.get("NextRun"), url),
        "placeholder": False,
    }


def repository(el: etree._Element, f: Fields, url: str | None, row: dict) -> dict[str, Any]:
    """Capacity -1 means EM does not know it (em-backup-side.md §8), and object-storage repositories
    report FreeSpace -1 as well ("Agent computers and file shares"): both stored as NULL."""
    return {
        "kind": f.get("Kind"),
        "capacity": _known_size(parse.integer(f.get("Capacity"), url)),
        "free_space": _known_size(parse.integer(f.get("FreeSpace"), url)),
        "placeholder": False,
    }


def _known_size(value: int | None) -> int | None:
    """A size EM reports, None when it reports a negative one (-1: unknown)."""
    return None if value is not None and value < 0 else value


def backup(el: etree._Element, f: Fields, url: str | None, row: dict) -> dict[str, Any]:
    """The backup's job is not in the entity; the loader asks `type=Backup&filter=JobUid==…`."""
    return {"platform": f.get("Platform"), "backup_type": f.get("BackupType"), "placeholder": False}


def replica(el: etree._Element, f: Fields, url: str | None, row: dict) -> dict[str, Any]:
    return {"platform": f.get("Platform"), "placeholder": False}


def backup_task_session(el: etree._Element, f: Fields, url: str | None, row: dict) -> dict[str, Any]:
    """`TotalSize` is the VM's source size, not bytes moved (em-backup-side.md §2)."""
    return {
        "vm_restore_point_link": "link" if row.get("vm_restore_point_uid") is not None else None,
        "vm_uid": f.get("VmUid"),
        **task_session(el, f, url, row),
    }


def restore_point(el: etree._Element, f: Fields, url: str | None, row: dict) -> dict[str, Any]:
    """Its Name is a SQL-Server-style date ("Jun  5 2025  1:01AM"): never parsed; BackupDateUTC is."""
    return {"backup_date_utc": parse.utc(f.get("BackupDateUTC"), url), "placeholder": False}


def vm_restore_point(el: etree._Element, f: Fields, url: str | None, row: dict) -> dict[str, Any]:
    return {
        "vm_display_name": el.get("VmDisplayName"),
        "vm_name": f.get("VmName"),
        "hierarchy_obj_ref": f.get("HierarchyObjRef"),
        "creation_time_utc": parse.utc(f.get("CreationTimeUTC"), url),
        "algorithm": f.get("Algorithm"),
        "point_type": f.get("PointType"),
        "placeholder": False,
    }


def agent_restore_point(el: etree._Element, f: Fields, url: str | None, row: dict) -> dict[str, Any]:
    """An agent computer's point has no VmName or HierarchyObjRef (em-backup-side.md §10): the
    computer is named by the entity's Name, `<computer>@<yyyy-MM-dd HH:mm:ss>`, up to its last `@`."""
    name = row.get("name")
    return {
        "computer_name": name.rpartition("@")[0] or name if name else None,
        "creation_time_utc": parse.utc(f.get("CreationTimeUTC"), url),
        "algorithm": f.get("Algorithm"),
        "point_type": f.get("PointType"),
        "placeholder": False,
    }


def backup_file(el: etree._Element, f: Fields, url: str | None, row: dict) -> dict[str, Any]:
    """Note the spelling `CreationTimeUtc` on backup files (em-backup-side.md §6); ratios are decimals."""
    return {
        "file_path": f.get("FilePath"),
        "file_type": f.get("FileType"),
        "backup_size": parse.integer(f.get("BackupSize"), url),
        "data_size": parse.integer(f.get("DataSize"), url),
        "deduplication_ratio": parse.decimal(f.get("DeduplicationRatio"), url),
        "compress_ratio": parse.decimal(f.get("CompressRatio"), url),
        "creation_time_utc": parse.utc(f.get("CreationTimeUtc") or f.get("CreationTimeUTC"), url),
        "placeholder": False,
    }
