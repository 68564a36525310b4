"""Query pages into the warehouse, a transaction of whole pages (about `Options.batch_rows` rows) at
a time: each page's missing parents (etl.parents), then its rows (etl.load), its quarantined
entities, snapshots and undocumented values, then the lock heartbeat. The run's summary counts only
what committed. Asks EM nothing itself (its pages and parents come through the Fetcher).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from . import parse, registry, runs, schema
from .errors import AccessDenied, DataError, LoadError
from .load import Loader
from .parents import Missing, Parents
from .registry import EntityType
from .runs import Summary
from .settings import Options
from .transform import Page, QuarantineRecord, TableRows

if TYPE_CHECKING:
    from .crawl import Fetcher

log = logging.getLogger(__name__)

Progress = Callable[[Summary, str], None]  # told the summary and the type after every commit


class Loaded(NamedTuple):
    """What one query gave: rows read (committed), and their uids when asked for."""

    rows: int
    uids: set[str]


class _Transaction:
    """What one transaction did, added to the summary only once it has committed."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.parents_fetched = 0
        self.parents_from_links = 0
        self.quarantined: list[str] = []  # keys of entities quarantined
        self.values: list[tuple[str, str, str]] = []  # undocumented enum values met first in it

    def commit_into(self, summary: Summary, rejected: set[str]) -> None:
        for (table, what), n in self.counts.items():
            summary.tables.setdefault(table, {"inserted": 0, "updated": 0})[what] += n
        summary.parents_fetched += self.parents_fetched
        summary.parents_from_links += self.parents_from_links
        for key in self.quarantined:
            if key not in rejected:  # one entity, counted once however often we met it
                rejected.add(key)
                summary.quarantined += 1


class Store:
    """One run's writing of query pages into the warehouse, and what it learns on the way: the
    newest creation instant committed per type and backup server (`marks`), the inventory EM listed
    (`listed`), the sessions EM reported unfinished (`running`), what was quarantined (`rejected`),
    the types EM refused. `progress(summary, type_name)` is called after every commit."""

    def __init__(
        self, eng: Engine, fetcher: Fetcher, summary: Summary, opts: Options, progress: Progress | None
    ):
        self.eng, self.fetcher, self.summary, self.progress = eng, fetcher, summary, progress
        self.rows_per_transaction = opts.batch_rows
        self.marks: runs.Marks = {}  # newest creation instant committed, per type and backup server
        self.listed: dict[str, set[str]] = {}  # inventory tables: the uids EM listed in this run
        self.rejected: set[str] = set()  # uids/hrefs quarantined in this run (few)
        self.running: set[str] = set()  # sessions EM reported as unfinished in this run
        self.parents = Parents(fetcher, self.rejected)
        self._warned: set[str] = set()  # types a 403 was warned about (once per run each)
        self.now = schema.now_utc()
        with eng.connect() as conn:
            # (type, column, value) of the undocumented enum values the warehouse has recorded or this
            # run has met: each is warned about once per warehouse (runs.record_undocumented)
            self.values_seen: set[tuple[str, str, str]] = runs.undocumented_values(conn)
            # tables empty at the start: a first load needs no comparisons
            self.fresh = frozenset(
                t.name for t in registry.tables() if conn.execute(select(t.c.uid).limit(1)).first() is None
            )

    def load(
        self,
        entity_type: EntityType,
        pages: Iterator[Page],
        collect: bool = False,
        moves_watermarks: bool = False,
    ) -> Loaded:
        """Every page of a query, committed a transaction at a time. Returns the rows read and, with
        `collect`, their uids. Only a query that `moves_watermarks` (a type read whole, or from its
        watermarks: plan.Window) advances them. A type EM refuses to this account (HTTP 403, raised by `pages`) is skipped, now
        and for the rest of the run (`refuse`); the transaction in flight is rolled back."""
        got = Loaded(0, set())
        if entity_type.name in self.summary.refused:
            return got
        try:
            while True:
                uids = got.uids if collect else None
                more, rows = self._transaction(entity_type, pages, uids, moves_watermarks)
                got = got._replace(rows=got.rows + rows)
                if not more:
                    return got
        except AccessDenied as exc:
            self.parents.forget()  # it remembered rows of the transaction rolled back
            self.refuse(entity_type, exc)
            return got

    def refuse(self, entity_type: EntityType, exc: AccessDenied, link: bool = False) -> None:
        """EM answered 403 to a query of `entity_type` (or, `link`, to a link to one): the account's
        role may not read it (em-api.md, "Roles"). A refused query type is recorded in the run and
        skipped; one warning per type and run names the EM role that reads it."""
        if not link:
            self.summary.refused[entity_type.name] = entity_type.role
        if entity_type.name in self._warned:
            return
        self._warned.add(entity_type.name)
        if link:
            log.warning(
                "EM refused links to %s to this account (HTTP 403, %s): recorded from the links; reading "
                "%s needs the EM role %s",
                entity_type.name,
                exc.url,
                entity_type.table,
                entity_type.role,
            )
        else:
            log.warning(
                "EM refused type=%s to this account (HTTP 403): %s skipped, the rest loads; reading it needs "
                "the EM role %s%s",
                entity_type.name,
                entity_type.table,
                entity_type.role,
                "; without the backup server list, incremental types are read from their earliest "
                "watermark on every server (a server EM adds later is read from there, not whole)"
                if entity_type is registry.BACKUP_SERVER
                else "",
            )

    def _transaction(
        self, entity_type: EntityType, pages: Iterator[Page], uids: set[str] | None, moves_watermarks: bool
    ) -> tuple[bool, int]:
        """One transaction: pages stored as they arrive (each page's missing parents, then its rows and
        quarantined entities) until about `rows_per_transaction` rows, then the lock heartbeat.
        Storing a page while the next ones are fetched keeps both busy. A failure rolls the whole
        transaction back and names the table and a page. Returns (whether pages are left, rows
        read); `uids` collects theirs."""
        s = self.summary
        done = _Transaction()
        first, rows, more = None, 0, True
        newest: dict[str, datetime] = {}
        listed: set[str] = set()
        running: list[str] = []
        try:
            with self.eng.begin() as conn:
                try:
                    loader = Loader(conn, s.source, s.run_id, self.now, self.fresh)
                    for page in pages:
                        first = first or page.url
                        self._store(loader, page.rows, done)
                        if entity_type.snapshot:
                            self._snapshot(conn, entity_type, page.rows)
                        for record in page.quarantined:
                            self._quarantine(conn, record, done)
                        if entity_type.time_column:
                            if moves_watermarks:
                                _newest(newest, page.rows, entity_type.time_column)
                        else:  # inventory, read whole: what EM lists now
                            listed.update(page.rows.column("uid"))
                        if uids is not None:
                            uids.update(page.rows.column("uid"))
                        if entity_type.final_state is not None:
                            running += [
                                uid
                                for uid, state in zip(
                                    page.rows.column("uid"), page.rows.column("state"), strict=True
                                )
                                if state != entity_type.final_state
                            ]
                        self._check_values(entity_type, page.rows, done)
                        rows += len(page.rows.values)
                        if rows >= self.rows_per_transaction:
                            break
                    else:
                        more = False
                    runs.heartbeat(conn, s.source, s.run_id)
                    runs.record_progress(conn, s, done.counts)
                except KeyboardInterrupt:
                    # a signal mid-statement can leave the driver's connection in the middle of a
                    # command (the COPY path talks to psycopg directly): drop the connection rather
                    # than roll back on it; the server rolls the transaction back as it goes
                    conn.invalidate()
                    raise
        except SQLAlchemyError as exc:
            raise LoadError(
                f"loading {entity_type.name} pages failed and was rolled back: {type(exc).__name__}: "
                f"{getattr(exc, 'orig', None) or exc} (first page {first})"
            ) from None
        # what the run learnt from this transaction counts once it is committed
        done.commit_into(s, self.rejected)
        self._record_values(done.values)
        marks = self.marks.setdefault(entity_type.name, {})
        for server, at in newest.items():
            if server not in marks or at > marks[server]:
                marks[server] = at
        if listed:
            self.listed.setdefault(entity_type.table, set()).update(listed)
        self.running.update(running)
        if self.progress and first is not None:
            self.summary.requests = self.fetcher.requests
            self.progress(self.summary, entity_type.name)
        return more, rows

    def _store(self, loader: Loader, rows: TableRows, done: _Transaction) -> None:
        """Upsert rows of one table, after making sure every parent they name is in the warehouse."""
        if not rows.values:
            return
        for missing in self.parents.missing(loader, rows):
            self._add_parents(loader, missing, done)
        self._write(loader, rows, done)

    def _write(self, loader: Loader, rows: TableRows, done: _Transaction) -> None:
        inserted, updated = loader.upsert(rows)
        self.parents.remember(rows.table, rows.column("uid"))
        done.counts[(rows.table, "inserted")] += inserted
        done.counts[(rows.table, "updated")] += updated

    def _add_parents(self, loader: Loader, missing: Missing, done: _Transaction) -> None:
        """Store the parents EM gave by link, and record those it could not give from the link."""
        parent_type, placeholders = missing.entity_type, missing.placeholders
        if missing.refused is not None:
            self.refuse(parent_type, missing.refused, link=True)
        for record in missing.quarantined:
            self._quarantine(loader.conn, record, done)
        done.parents_fetched += len(missing.fetched.values)
        done.parents_from_links += len(placeholders.values)
        if placeholders.values:
            uids = placeholders.column("uid")
            log.warning(
                "recorded %d %s from a link only (EM did not return them): %s%s",
                len(uids),
                parent_type.table,
                ", ".join(uids[:3]),
                f" and {len(uids) - 3} more (-v lists them)" if len(uids) > 3 else "",
            )
            log.debug("recorded from a link only: %s", ", ".join(uids))
        if missing.fetched.values:
            self._write(loader, missing.fetched, done)
        if placeholders.values:
            inserted, _ = loader.upsert(placeholders)
            done.counts[(parent_type.table, "inserted")] += inserted

    def _snapshot(self, conn: Connection, entity_type: EntityType, rows: TableRows) -> None:
        """One row per entity of this run in the type's snapshot table (e.g. repository space)."""
        assert entity_type.snapshot is not None
        table, key = entity_type.snapshot
        history = schema.table(table)
        measured = [c.name for c in history.columns if c.name in rows.columns and c.name != key]
        found = [dict(zip(rows.columns, values, strict=True)) for values in rows.values]
        found = [r for r in found if not r.get("placeholder")]
        if not found:
            return
        conn.execute(
            delete(history).where(
                history.c.run_id == self.summary.run_id, history.c[key].in_([r["uid"] for r in found])
            )
        )
        conn.execute(
            insert(history),
            [
                {
                    key: r["uid"],
                    "run_id": self.summary.run_id,
                    "source": self.summary.source,
                    "observed_at": self.now,
                }
                | {c: r[c] for c in measured}
                for r in found
            ],
        )

    def _check_values(self, entity_type: EntityType, rows: TableRows, done: _Transaction) -> None:
        """Note each enum value EM's documentation does not list (it is stored as sent: em-api.md,
        "Values are open sets") that the warehouse has not recorded yet."""
        for column, documented in entity_type.enums.items():
            for value in set(rows.column(column)) - documented:
                key = (entity_type.name, column, value)
                if value is not None and key not in self.values_seen:
                    self.values_seen.add(key)
                    done.values.append(key)

    def _record_values(self, values: list[tuple[str, str, str]]) -> None:
        """Record undocumented values once their rows are committed, and warn about those no run
        recorded before (once per warehouse, whichever EM sent them first: a value counts in the
        run that first met it)."""
        if not values:
            return
        with self.eng.begin() as conn:
            new = runs.record_undocumented(conn, self.summary.source, self.summary.run_id, self.now, values)
        for entity_type, column, value in new:
            self.summary.new_values += 1
            log.warning(
                "%s %s %r is not a value EM documents; stored as sent (warned about once; "
                "`veeam-etl status` lists such values)",
                entity_type,
                column,
                value,
            )

    def _quarantine(self, conn: Connection, record: QuarantineRecord, done: _Transaction) -> None:
        log.warning("quarantined %s %s: %s", record.type_name, record.href, record.error)
        runs.quarantine(
            conn,
            self.summary.source,
            self.summary.run_id,
            record.type_name,
            record.href,
            record.uid,
            record.error,
            record.excerpt,
        )
        done.quarantined.append(record.uid or _uid_or_href(record.href, record.type_name))


def _newest(newest: dict[str, datetime], rows: TableRows, column: str) -> None:
    """Fold the rows' newest `column` instant per backup server into `newest`."""
    for server, at in zip(rows.column("backup_server_uid"), rows.column(column), strict=True):
        if server is not None and at is not None and (server not in newest or at > newest[server]):
            newest[server] = at


def _uid_or_href(href: str, type_name: str) -> str:
    """The uid an href names (EM's rule: the guid is its last path segment), or the href itself."""
    try:
        return parse.uid_from_href(href, type_name)
    except DataError:
        return href
