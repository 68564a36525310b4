"""The parents the rows of a page name: known to be in the warehouse (a bounded cache of what was
checked), fetched from EM by their links (through the Fetcher), or placeholders recorded from the
link when EM cannot give them. Returns what to store, parents before children; writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import registry, schema, transform
from .errors import AccessDenied
from .load import Loader
from .registry import EntityType
from .transform import Entity, QuarantineRecord, TableRows

if TYPE_CHECKING:
    from .crawl import Fetcher

KNOWN_LIMIT = 100_000  # parent uids remembered per table: at most ~14 MB each, whatever the estate


@dataclass
class Missing:
    """Parents of one type that rows name and the warehouse lacks: the entities EM gave (`fetched`)
    and those recorded from the link (`placeholders`: EM answered 404 or 403, the link is to another
    origin, or the entity was quarantined), the unreadable entities EM gave (`quarantined`) and, if
    EM refused a link to this account, its answer (`refused`)."""

    entity_type: EntityType
    fetched: TableRows
    placeholders: TableRows
    quarantined: list[QuarantineRecord]
    refused: AccessDenied | None


class Parents:
    """The parents of one run's rows. `rejected`: uids or hrefs quarantined in this run (the run's
    own set, which it adds to as it commits): such a parent is not asked for again, only recorded."""

    def __init__(self, fetcher: Fetcher, rejected: set[str]):
        self.fetcher = fetcher
        self.rejected = rejected
        # parents confirmed in the warehouse during this run, for the tables some type names as a parent
        self.known: dict[str, set[str]] = {
            table: set() for table in registry.parent_tables(registry.TYPES.values())
        }

    def missing(self, loader: Loader, rows: TableRows) -> Iterator[Missing]:
        """The parents `rows` name that the warehouse lacks, per declared parent of their table, each
        type's own missing parents first. Parents in `rows` themselves (a backup's parent backup) are
        written with them. A generator: store each `Missing` before taking the next, which may name
        what it holds."""
        for parent in registry.by_table(rows.table).parents:
            parent_type = registry.TYPES.get(parent.type_name)
            if parent_type is None:  # a relation the warehouse does not keep as a foreign key
                continue
            known = self.known[parent_type.table]
            unsure = [
                uid
                for uid in dict.fromkeys(rows.column(parent.column))
                if uid is not None and uid not in known
            ]
            if parent_type.table == rows.table:  # a parent in the same rows is written with them
                unsure = [uid for uid in unsure if uid not in set(rows.column("uid"))]
            if not unsure:
                continue
            present = loader.present(schema.table(parent_type.table), unsure)
            self.remember(parent_type.table, present)
            absent = sorted(set(unsure) - present)
            if absent:
                links = {uid: rows.link(parent.column, uid) for uid in absent}
                yield from self._fetch(loader, parent_type, links)

    def _fetch(self, loader: Loader, parent_type: EntityType, links: dict) -> Iterator[Missing]:
        """Fetch missing parents by their links (in parallel); those EM cannot give become
        placeholders. What the fetched ones name comes first."""
        # a parent quarantined earlier in this run is not asked for again: it would be rejected again
        with_link = [
            (uid, link) for uid, link in links.items() if link is not None and uid not in self.rejected
        ]
        fetched = self.fetcher.parents([link for _, link in with_link], parent_type)
        found: list[Entity] = []
        placeholders: list[dict] = []
        quarantined: list[QuarantineRecord] = []
        refused: AccessDenied | None = None
        for (uid, link), got in zip(with_link, fetched, strict=True):
            if isinstance(got, Entity) and got.row["uid"] == uid:
                found.append(got)
                continue
            if isinstance(got, AccessDenied):
                refused = got
            if isinstance(got, QuarantineRecord):
                quarantined.append(got)
            placeholders.append(transform.placeholder(link, uid))  # the child's reference wins over the href
        placeholders += [
            transform.placeholder(link, uid)
            if link
            else {"uid": uid, "href": None, "name": None, "placeholder": True}
            for uid, link in links.items()
            if link is None or uid in self.rejected
        ]
        rows = transform.rows_of(parent_type.table, found)
        if found:
            yield from self.missing(loader, rows)
        yield Missing(
            parent_type, rows, transform.table_rows(parent_type.table, placeholders), quarantined, refused
        )

    def remember(self, table: str, uids: Iterable[str]) -> None:
        """Note parents known to be in the warehouse, so the next page need not ask (bounded)."""
        known = self.known.get(table)
        if known is not None:
            if len(known) > KNOWN_LIMIT:
                known.clear()
            known.update(uids)

    def forget(self) -> None:
        """Forget every parent remembered (a transaction that stored some was rolled back)."""
        for known in self.known.values():
            known.clear()

    def forget_all_but(self, to_load: Iterable[EntityType]) -> None:
        """Drop the remembered parents no type in `to_load` names: they are only a cache of
        `Loader.present`, and at a million task sessions the biggest part of this process's memory."""
        needed = registry.parent_tables(to_load)
        for table, known in self.known.items():
            if table not in needed:
                known.clear()
