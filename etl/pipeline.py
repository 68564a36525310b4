"""run(): the one place that knows every stage — crawl → transform → load — plus the run record, and
what keeps a run complete against a live EM: the children of parents new to the warehouse, the
check that EM read a window's filter as meant, the retention sweep and the completeness check.

A batch of whole query pages (about 10,000 rows) is one transaction: each page, as it arrives, its
missing parents (fetched by link, or recorded from the link when EM cannot give them), then its
rows; then the lock heartbeat. So every commit leaves the warehouse consistent, and a killed run
loses at most the batch in flight. What the summary counts, and the watermarks, advance only with
what was committed; watermarks only when the whole run has succeeded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from . import crawl, db, parse, reconcile, registry, runs, schema, settings, transform, verify
from .client import EMClient, redact_url
from .errors import AccessDenied, DataError, LoadError, SourceError
from .load import Loader
from .registry import EntityType
from .retry import RetryPolicy
from .settings import Options
from .transform import Entity, Page, QuarantineRecord, RowBatch
from .workers import ProcessPool

log = logging.getLogger(__name__)

KNOWN_LIMIT = 100_000  # parent uids remembered per table: at most ~14 MB each, whatever the estate

__all__ = ["Options", "RetryPolicy", "Summary", "mode_of", "run", "source_name", "starts"]


def source_name(url: str) -> str:
    """The identity of an Enterprise Manager in the warehouse: its API URL, lower-cased, no credentials."""
    parts = urlsplit(redact_url(url))
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def _uid_or_href(href: str, type_name: str) -> str:
    """The uid an href names (EM's rule: the guid is its last path segment), or the href itself."""
    try:
        return parse.uid_from_href(href, type_name)
    except DataError:
        return href


@dataclass
class Summary:
    """What one run did. Counts are of committed work only."""

    run_id: int
    source: str
    mode: str
    status: str = "running"
    tables: dict[str, dict[str, int]] = field(
        default_factory=lambda: {t.table: {"inserted": 0, "updated": 0} for t in registry.TYPES.values()}
    )
    parents_fetched: int = 0  # parents fetched by following a child's link
    placeholders: int = 0  # parents EM could not give, recorded from what the child's link says
    quarantined: int = 0
    new_values: int = 0  # enum values EM sent that its documentation does not list (stored as sent)
    # columns the loader filled itself (etl.reconcile): "table.column" -> rows filled in this run
    worked_out: dict[str, int] = field(default_factory=dict)
    # retention sweep: table -> {"deleted": rows EM no longer lists, "back": rows listed again}
    swept: dict[str, dict[str, int]] = field(default_factory=dict)
    sweep_requests: int = 0  # of `requests`: those of the retention sweep
    # query types EM refused to this account (HTTP 403), skipped: type -> the EM role that reads it
    refused: dict[str, str] = field(default_factory=dict)
    # the completeness check, when the run made one (etl.verify): what it compared, found, reloaded
    verification: verify.Verification | None = None
    requests: int = 0
    retries: int = 0
    foreign_links: int = 0
    duration_s: float = 0.0

    def finish(self, status: str, client: EMClient | None, started: float) -> None:
        self.status = status
        self.duration_s = time.monotonic() - started
        if client is not None:
            self.requests, self.retries, self.foreign_links = (
                client.requests,
                client.retries,
                client.foreign_links,
            )

    @property
    def written(self) -> int:
        """Rows inserted or updated so far, in every table."""
        return sum(c["inserted"] + c["updated"] for c in self.tables.values())

    def stats(self) -> dict:
        v = self.verification
        return {
            "tables": self.tables,
            "verify_compared": None if v is None else len(v.counts),
            "verify_differing": None if v is None else len(v.differences),
            "verify_reloaded": None if v is None else v.reloaded,
            "verify_requests": None if v is None else v.requests,
            "parents_from_links": self.placeholders,
            "requests": self.requests,
            "retries": self.retries,
            "quarantined": self.quarantined,
            "foreign_links": self.foreign_links,
            "new_values": self.new_values,
            "sweep_requests": self.sweep_requests,
            "refused": [{"type": t, "role": role} for t, role in self.refused.items()],
        }


Progress = Callable[[Summary, str], None]


class Loaded(NamedTuple):
    """What one query gave: rows read (committed), and their uids when asked for."""

    rows: int
    uids: set[str]


class _Batch:
    """What one transaction did, added to the summary only once it has committed."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.parents_fetched = 0
        self.placeholders = 0
        self.quarantined: list[str] = []  # keys of entities quarantined
        self.values: list[tuple[str, str, str]] = []  # undocumented enum values met first in this batch

    def commit_into(self, summary: Summary, rejected: set[str]) -> None:
        for (table, what), n in self.counts.items():
            summary.tables.setdefault(table, {"inserted": 0, "updated": 0})[what] += n
        summary.parents_fetched += self.parents_fetched
        summary.placeholders += self.placeholders
        for key in self.quarantined:
            if key not in rejected:  # one entity, counted once however often we met it
                rejected.add(key)
                summary.quarantined += 1


def _newest(newest: dict[str, datetime], rows: RowBatch, column: str) -> None:
    """Fold the rows' newest `column` instant per backup server into `newest`."""
    for server, at in zip(rows.column("backup_server_uid"), rows.column(column), strict=True):
        if server is not None and at is not None and (server not in newest or at > newest[server]):
            newest[server] = at


class Loading:
    """One run's loading of query pages into the warehouse, batch by batch."""

    def __init__(
        self,
        eng: Engine,
        client: EMClient,
        summary: Summary,
        pool: ThreadPoolExecutor,
        ahead: int,
        progress: Progress | None,
        worker_processes: int = 0,
        batch_rows: int = 1,
    ):
        self.eng, self.client, self.summary, self.pool, self.ahead = eng, client, summary, pool, ahead
        self.progress = progress
        self.worker_processes = worker_processes
        self.batch_rows = batch_rows
        self._workers: ProcessPool | None = None
        self._starting = threading.Lock()
        self.marks: runs.Marks = {}  # newest creation instant committed, per type and backup server
        self.listed: dict[str, set[str]] = {}  # inventory tables: the uids EM listed in this run
        self.rejected: set[str] = set()  # uids/hrefs quarantined in this run (few)
        self.running: set[str] = set()  # sessions EM reported as unfinished in this run
        self.refusals_warned: set[str] = set()  # types a 403 was warned about (once per run each)
        # parents confirmed in the warehouse during this run, for the tables some type names as a parent
        self.known: dict[str, set[str]] = {
            table: set() for table in registry.parent_tables(registry.TYPES.values())
        }
        self.now = schema.now_utc()
        with eng.connect() as conn:
            # (type, column, value) of the undocumented enum values the warehouse has recorded or this
            # run has met: each is warned about once per warehouse (runs.record_undocumented)
            self.values_seen: set[tuple[str, str, str]] = runs.undocumented_values(conn)
            # tables empty at the start: a first load needs no comparisons
            self.fresh = frozenset(
                t.name for t in registry.tables() if conn.execute(select(t.c.uid).limit(1)).first() is None
            )

    def workers(self) -> ProcessPool | None:
        """Worker processes for long queries, started on first need (None when configured off); from
        any thread (a prefetch asks for them on the thread that read a query's page 1)."""
        with self._starting:
            if self._workers is None and self.worker_processes > 0:
                self._workers = ProcessPool(self.worker_processes)
            return self._workers

    def close(self) -> None:
        if self._workers is not None:
            self._workers.shutdown()

    def load_pages(
        self,
        entity_type: EntityType,
        filter: str | None = None,
        first: crawl.Prefetch | Future | None = None,
        collect: bool = False,
        window: bool = False,
    ) -> Loaded:
        """Every row of a query (crawl.pages), committed a batch of pages (about `batch_rows` rows) at
        a time; `first`: its page 1, asked for already (crawl.first_page). Returns the rows read and,
        with `collect`, their uids. Only a `window` (a type read whole, or from its watermarks) moves
        the watermarks: what a query by parent, UID or bucket finds says nothing about the rows
        created before it that were not asked for. A type EM refuses to this account (HTTP 403) is
        skipped, now and for the rest of the run (`refuse`); the batch in flight is rolled back."""
        got = Loaded(0, set())
        if entity_type.name in self.summary.refused:
            return got
        pages = crawl.pages(self.client, self.pool, entity_type, filter, self.ahead, self.workers, first)
        try:
            while True:
                more, rows = self._load_batch(entity_type, pages, got.uids if collect else None, window)
                got = got._replace(rows=got.rows + rows)
                if not more:
                    return got
        except AccessDenied as exc:
            for known in self.known.values():  # it remembered rows of the batch rolled back
                known.clear()
            self.refuse(entity_type, exc)
            return got

    def refuse(self, entity_type: EntityType, exc: AccessDenied, link: bool = False) -> None:
        """EM answered 403 to a query of `entity_type` (or, `link`, to a link to one): the account's
        role may not read it (em-api.md, "Roles"). A refused query type is recorded in the run and
        skipped; one warning per type and run names the EM role that reads it."""
        if not link:
            self.summary.refused[entity_type.name] = entity_type.role
        if entity_type.name in self.refusals_warned:
            return
        self.refusals_warned.add(entity_type.name)
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

    def lookup(self, entity_type: EntityType, uids: Iterable[str]) -> set[str]:
        """Load the given rows from EM by `UID==` (UIDS_PER_QUERY OR-ed a query); the uids EM returned."""
        wanted = set(uids)
        found: set[str] = set()
        for flt in crawl.uid_filters("UID", sorted(wanted)):
            found |= self.load_pages(entity_type, flt, collect=True).uids
        return found & wanted

    def _load_batch(
        self, entity_type: EntityType, pages: Iterator[Page], uids: set[str] | None, window: bool
    ) -> tuple[bool, int]:
        """One transaction: pages stored as they arrive (each page's missing parents, then its rows and
        quarantined entities) until about `batch_rows` rows, then the lock heartbeat. Storing a page
        while the next ones are fetched keeps both busy. A failure rolls the whole batch back and
        names the table and a page. Returns (whether pages are left, rows read); `uids` collects
        theirs."""
        s = self.summary
        done = _Batch()
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
                            if window:
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
                        if rows >= self.batch_rows:
                            break
                    else:
                        more = False
                    runs.heartbeat(conn, s.source, s.run_id)
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
        # what the run learnt from this batch counts once it is committed
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
            self.summary.requests = self.client.requests
            self.progress(self.summary, entity_type.name)
        return more, rows

    def _snapshot(self, conn: Connection, entity_type: EntityType, rows: RowBatch) -> None:
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

    def _check_values(self, entity_type: EntityType, rows: RowBatch, done: _Batch) -> None:
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

    def _quarantine(self, conn: Connection, record: QuarantineRecord, done: _Batch) -> None:
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

    def _store(self, loader: Loader, rows: RowBatch, done: _Batch) -> None:
        """Upsert rows of one table, after making sure every parent they name is in the warehouse."""
        if not rows.values:
            return
        self._ensure_parents(loader, rows, done)
        inserted, updated = loader.upsert(rows)
        self._remember(rows.table, rows.column("uid"))
        done.counts[(rows.table, "inserted")] += inserted
        done.counts[(rows.table, "updated")] += updated

    def _ensure_parents(self, loader: Loader, rows: RowBatch, done: _Batch) -> None:
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
            self._remember(parent_type.table, present)
            missing = sorted(set(unsure) - present)
            if missing:
                self._add_parents(
                    loader, parent_type, {uid: rows.link(parent.column, uid) for uid in missing}, done
                )

    def forget_parents_but(self, to_load: Iterable[EntityType]) -> None:
        """Drop the remembered parents no type in `to_load` names: they are only a cache of
        `Loader.present`, and at a million task sessions the biggest part of this process's memory."""
        needed = registry.parent_tables(to_load)
        for table, known in self.known.items():
            if table not in needed:
                known.clear()

    def _remember(self, table: str, uids) -> None:
        """Note parents known to be in the warehouse, so the next page need not ask (bounded)."""
        known = self.known.get(table)
        if known is not None:
            if len(known) > KNOWN_LIMIT:
                known.clear()
            known.update(uids)

    def _add_parents(self, loader: Loader, parent_type: EntityType, links: dict, done: _Batch) -> None:
        """Fetch missing parents by their links (in parallel); record those EM cannot give from the link."""
        # a parent quarantined earlier in this run is not asked for again: it would be rejected again
        with_link = [
            (uid, link) for uid, link in links.items() if link is not None and uid not in self.rejected
        ]

        def fetch(link: parse.Link) -> Entity | QuarantineRecord | AccessDenied | None:
            try:
                return crawl.fetch_parent(self.client, link, parent_type)
            except AccessDenied as exc:  # the account's role may not read it: like a 404
                return exc

        fetched = self.pool.map(lambda item: fetch(item[1]), with_link)
        found: list[Entity] = []
        placeholders: list[dict] = []
        for (uid, link), got in zip(with_link, fetched, strict=True):
            if isinstance(got, Entity) and got.row["uid"] == uid:
                found.append(got)
                continue
            if isinstance(got, AccessDenied):
                self.refuse(parent_type, got, link=True)
            if isinstance(got, QuarantineRecord):
                self._quarantine(loader.conn, got, done)
            placeholders.append(transform.placeholder(link, uid))  # the child's reference wins over the href
        placeholders += [
            transform.placeholder(link, uid)
            if link
            else {"uid": uid, "href": None, "name": None, "placeholder": True}
            for uid, link in links.items()
            if link is None or uid in self.rejected
        ]
        done.parents_fetched += len(found)
        done.placeholders += len(placeholders)
        if placeholders:
            uids = [p["uid"] for p in placeholders]
            log.warning(
                "recorded %d %s from a link only (EM did not return them): %s%s",
                len(uids),
                parent_type.table,
                ", ".join(uids[:3]),
                f" and {len(uids) - 3} more (-v lists them)" if len(uids) > 3 else "",
            )
            log.debug("recorded from a link only: %s", ", ".join(uids))
        self._store(loader, transform.batch_of(parent_type.table, found), done)
        if placeholders:
            inserted, _ = loader.upsert(transform.batch(parent_type.table, placeholders))
            done.counts[(parent_type.table, "inserted")] += inserted

    def finish_stragglers(self) -> None:
        """Sessions the warehouse last saw unfinished that EM now reports neither unfinished nor ended
        since the window start (collected late, or removed): read by UID until they finish; and the
        task sessions of those job sessions, which may have been added since."""
        refused = self.summary.refused
        sessions = [t for t in registry.TYPES.values() if t.final_state is not None and t.name not in refused]
        reread: dict[str, list[str]] = {}
        with self.eng.connect() as conn:
            for t in sessions:
                table, final = schema.table(t.table), str(t.final_state)
                reread[t.name] = [
                    uid
                    for uid in runs.unfinished(conn, self.summary.source, table, final)
                    if uid not in self.running
                ]
            for t in sessions:  # task sessions: read by their job session (its `by_parent`)
                if t.by_parent is None:
                    continue
                column = t.by_parent.column
                of_tasks = runs.values_of(conn, schema.table(t.table), column, reread[t.name])
                reread[t.name] = sorted(set(reread.get(str(t.parent_type), [])) | of_tasks)
        if any(reread.values()):
            log.info("re-reading %s", ", ".join(f"{len(v)} {k}" for k, v in reread.items() if v))
        for t in sessions:
            filters = (
                crawl.uid_filters("UID", reread[t.name])
                if t.by_parent is None
                else crawl.parent_filters(t, reread[t.name])
            )
            for f in filters:
                self.load_pages(t, f)


def _load_everything(loading: Loading, opts: Options, mode: str, marks: runs.Marks) -> None:
    """Every entity type in registry order (inventory whole, the rest by windows, then the children of
    parents new to the warehouse); then the unfinished sessions, the retention sweep and the
    completeness check when they are due, and what the warehouse works out itself (restore points,
    jobs). A repair run (`veeam-etl verify --repair`) reads no windows: it sweeps, checks and reloads."""
    summary, eng = loading.summary, loading.eng
    known = {server for per_server in marks.values() for server in per_server}
    types = list(registry.TYPES.values())

    def queries() -> Iterator[tuple[int, EntityType, crawl.Window]]:
        """(position in load order, type, window), each type's windows worked out when reached."""
        if mode == "repair":
            return
        for i, entity_type in enumerate(types):
            servers = loading.listed.get(registry.BACKUP_SERVER.table, set()) | known
            begin = starts(opts, mode, marks, entity_type, servers)
            if registry.BACKUP_SERVER.name in summary.refused and isinstance(begin, dict):
                begin = _one_window(begin)
            for window in crawl.windows(entity_type, begin):
                yield i, entity_type, window
            # worked out once the windows above are asked for: the parents are of earlier types
            for flt in _children_of_new_parents(loading, entity_type, begin):
                yield i, entity_type, crawl.Window(flt, None)

    # Each query's page 1 is asked for while the query before it is stored: a run of some twenty
    # queries then waits for no round trip between them. Not past the backup servers: the windows
    # of the types after them are per backup server they list.
    todo = queries()
    query, first = next(todo, None), None
    while query is not None:
        i, entity_type, window = query
        loading.forget_parents_but(types[i:])
        whole = window.filter is None or window.starts is not None  # not a read by parent
        if entity_type is registry.BACKUP_SERVER:
            loading.load_pages(entity_type, window.filter, first, window=whole)
            query, first = next(todo, None), None
            continue
        query, current = next(todo, None), first
        first = (
            crawl.first_page(
                loading.client, loading.pool, query[1], query[2].filter, loading.ahead, loading.workers
            )
            if query
            else None
        )
        loaded = loading.load_pages(entity_type, window.filter, current, window=whole)
        if loaded.rows == 0 and window.overlaps and entity_type.name not in summary.refused:
            _check_filter(loading, entity_type, window)  # a refused type answered nothing: no proof
    if mode in ("incremental", "since"):
        loading.finish_stragglers()
    checking = _verify_due(loading, opts, mode)
    _sweep(loading, opts, mode, before_check=checking)  # first: it makes equal totals trustworthy
    if checking:
        _verify(loading, opts)
    with eng.begin() as conn:  # first: the jobs of backups follow the restore points their tasks made
        linked = reconcile.infer_restore_points(conn, summary.source, summary.run_id, loading.now)
    summary.worked_out[f"{registry.BACKUP_TASK_SESSION.table}.vm_restore_point_uid"] = linked
    if mode != "repair":  # after the sessions: agent jobs reach the warehouse as their parents
        for entity_type in registry.TYPES.values():
            if entity_type.job_types is not None and entity_type.name not in summary.refused:
                with eng.begin() as conn:  # the links first: they cost no request
                    by_links = reconcile.jobs_by_links(conn, entity_type, summary.source)
                try:
                    by_query = reconcile.map_jobs(
                        eng, loading.client, loading.pool, entity_type, summary.source, summary.run_id
                    )
                except AccessDenied as exc:
                    loading.refuse(entity_type, exc)
                    by_query = 0
                summary.worked_out[f"{entity_type.table}.job_uid"] = by_links + by_query


def _children_of_new_parents(
    loading: Loading, entity_type: EntityType, begin: crawl.Starts | datetime | None
) -> list[str]:
    """Filters that read the entities of `entity_type` whose parent is new to the warehouse in this
    run, whatever their creation times: an imported backup brings restore points and files dated
    weeks before the server's watermark (em-api.md, "EM changes while it is read"), so do its
    restore points their VM restore points. Only parents on backup servers this run did not read
    the type whole for (a full load, a new server: no request), and, for parents with a creation
    time, only those older than the type's window on their server (the children of a younger one
    are in the window)."""
    parent = registry.TYPES.get(entity_type.parent_type or "")
    if parent is None or begin is None:
        return []
    with loading.eng.connect() as conn:
        new = reconcile.new_parents(conn, parent, loading.summary.source, loading.now)
    wanted = []
    for uid, server, at in new:
        if isinstance(begin, dict):
            if server is not None and server in begin and begin[server] is None:
                continue  # this run reads the type whole on that server
            start = begin.get(server) if server is not None else None
        else:
            start = begin
        if at is not None and start is not None and at >= start:
            continue
        wanted.append(uid)
    if wanted:
        log.info("reading the %s of %d %s new to the warehouse", entity_type.name, len(wanted), parent.table)
    return list(crawl.parent_filters(entity_type, sorted(wanted)))


def _check_filter(loading: Loading, entity_type: EntityType, window: crawl.Window) -> None:
    """EM answered an incremental window with no row at all. Every such window overlaps rows the
    warehouse holds (it starts `lookback` before the newest one loaded per backup server), so EM did
    not read the window's filter as meant — a filter EM misreads (the `BackupServerUid` urn-vs-GUID
    form is undocumented) answers an empty result, not an error (em-api.md, "EM changes while it is
    read") — unless those rows are gone from EM: sessions that young never are (EM purges weeks-old
    history only), points can be (a backup deleted with its files), so for them EM is asked for a
    few by UID first. Raises SourceError naming the filter: loading nothing and succeeding would lose
    every later row silently."""
    assert window.filter is not None
    with loading.eng.connect() as conn:
        held = reconcile.held_in_window(
            conn, entity_type, loading.summary.source, window.starts, crawl.UIDS_PER_QUERY
        )
    if not held:
        return
    if entity_type.final_state is None:
        flt = next(crawl.uid_filters("UID", held))
        listed = {uid for chunk in crawl.uids(loading.client, None, entity_type, flt) for uid in chunk}
        if not listed:
            log.info(
                "%s: EM answered no row to a window and lists none of the %d rows the warehouse holds "
                "inside it: they are gone from EM (the retention sweep marks them)",
                entity_type.name,
                len(held),
            )
            return
        proof = (
            f"yet lists {len(listed)} of the {len(held)} rows the warehouse holds inside it when asked by UID"
        )
    else:
        proof = f"although the warehouse holds {len(held)} or more of its sessions inside it"
    shown = window.filter if len(window.filter) <= 600 else window.filter[:600] + "…"
    raise SourceError(
        f"EM answered no {entity_type.name} to the window filter {shown!r}, {proof}: EM did not read the "
        'filter as meant (em-api.md, "EM changes while it is read"); nothing was loaded from it and the '
        "watermarks stay where they are"
    )


def _one_window(begin: crawl.Starts) -> datetime | None:
    """One start for every backup server, for an account EM refuses the backup server list (a VM
    Restore Operator: em-api.md, "Roles"), where windows per server would leave out the servers the
    warehouse has not seen: the earliest start, so that no known server reads less (None, read
    whole, when a server has none). A server EM adds later is read from there, not whole."""
    if not begin or any(start is None for start in begin.values()):
        return None
    return min(start for start in begin.values() if start is not None)


def _has_placeholders(eng: Engine, entity_type: EntityType) -> bool:
    table = schema.table(entity_type.table)
    with eng.connect() as conn:
        return (
            conn.execute(select(table.c.uid).where(table.c.placeholder.is_(True)).limit(1)).first()
            is not None
        )


def _sweep(loading: Loading, opts: Options, mode: str, before_check: bool = False) -> None:
    """Retention: inventory types against what this run listed (no request); the others against
    EM's uid lists when due (every `sweep_hours`, in a full load, before a completeness check, or when
    `opts.sweep` forces it) — but a table this run filled from empty needs none unless it holds
    placeholders (rows known only from a link, which EM may or may not list). A row is marked
    deleted only once EM did not return it asked by UID (etl.reconcile.sweep). A type EM refused to
    this account (HTTP 403) is never swept: what it lists is unknown, not empty."""
    summary, client, eng = loading.summary, loading.client, loading.eng
    with eng.connect() as conn:
        last = runs.last_sweep(conn, summary.source)
    due = (
        opts.sweep
        if opts.sweep is not None
        else (
            before_check
            or mode in ("full", "repair")
            or last is None
            or loading.now - last >= timedelta(hours=opts.sweep_hours)
        )
    )
    before = client.requests
    for entity_type in reconcile.swept_types():
        if entity_type.name in summary.refused:
            continue
        listed: Iterable[list[str]]
        if entity_type.window is None:
            if mode == "repair":
                continue  # inventory was not read in this run
            listed = [sorted(loading.listed.get(entity_type.table, set()))]
        elif entity_type.table in loading.fresh and not _has_placeholders(eng, entity_type):
            continue  # empty before this run, and all it holds now EM listed: nothing to sweep
        elif due or entity_type.table in loading.fresh:
            listed = crawl.uids(client, loading.pool, entity_type)  # lazily: pages as the sweep reads
        else:
            continue
        try:
            gone, back = reconcile.sweep(
                eng,
                entity_type,
                summary.source,
                summary.run_id,
                loading.now,
                listed,
                _lookup(loading, entity_type),
            )
        except AccessDenied as exc:  # rolled back: nothing marked
            loading.refuse(entity_type, exc)
            continue
        summary.swept[entity_type.table] = {"deleted": gone, "back": back}
    summary.sweep_requests = client.requests - before
    if due:
        with eng.begin() as conn:
            runs.record_sweep(conn, summary.source, summary.run_id, loading.now)


def _lookup(loading: Loading, entity_type: EntityType) -> Callable[[list[str]], set[str]]:
    return lambda uids: loading.lookup(entity_type, uids)


def _verify_due(loading: Loading, opts: Options, mode: str) -> bool:
    """Whether this run checks completeness: when forced (`opts.verify`), in every full load and
    repair, else when the last check of this source is `verify_hours` old (0: every run)."""
    if opts.verify is not None:
        return opts.verify
    if mode in ("full", "repair"):
        return True
    with loading.eng.connect() as conn:
        last = runs.last_verification(conn, loading.summary.source)
    return last is None or loading.now - last >= timedelta(hours=opts.verify_hours)


def _verify(loading: Loading, opts: Options) -> None:
    """EM's counts against the warehouse's over the last `verify_days` up to where this run started
    (etl.verify), and what differs reloaded in this run through the same paging loop."""
    summary, eng, client = loading.summary, loading.eng, loading.client
    before = client.requests
    until = loading.now.replace(microsecond=0)
    servers = loading.listed.get(registry.BACKUP_SERVER.table)
    if servers is None:  # a repair run read no inventory: EM's list of backup servers
        try:
            servers = {uid for chunk in crawl.uids(client, None, registry.BACKUP_SERVER) for uid in chunk}
        except AccessDenied as exc:  # the servers the warehouse knows are compared
            loading.refuse(registry.BACKUP_SERVER, exc)
            servers = set()
    result = verify.compare(
        eng,
        client,
        loading.pool,
        summary.source,
        until - timedelta(days=opts.verify_days),
        until,
        servers,
        reload=lambda count: _reload(loading, count),
        refused=loading.refuse,
        skip=summary.refused,
    )
    result.requests = client.requests - before
    summary.verification = result
    log.info(
        "completeness: %d counts compared, %d differ, %d rows reloaded (%d requests)",
        len(result.counts),
        len(result.differences),
        result.reloaded,
        result.requests,
    )


def _reload(loading: Loading, count: verify.Count) -> int:
    """Read again exactly what one differing bucket covers (a type on a backup server on a day, or
    the points and files of some backups) and, for a type with `deleted_at`, mark what it no longer
    lists (once EM did not return it asked by UID). Returns the rows written."""
    summary, bucket = loading.summary, count.bucket
    entity_type = bucket.entity_type
    before = summary.written
    read: set[str] = set()
    for flt in bucket.filters():
        read |= loading.load_pages(entity_type, flt, collect=True).uids
    if "deleted_at" in schema.table(entity_type.table).c:
        gone, back = reconcile.sweep(
            loading.eng,
            entity_type,
            summary.source,
            summary.run_id,
            loading.now,
            [sorted(read)],
            lambda uids: loading.lookup(entity_type, uids),
            within=bucket.where(schema.table(entity_type.table)),
        )
        counts = summary.swept.setdefault(entity_type.table, {"deleted": 0, "back": 0})
        counts["deleted"] += gone
        counts["back"] += back
    return summary.written - before


def mode_of(opts: Options, marks: runs.Marks) -> str:
    """full (the first run on an empty warehouse, --full-refresh), since (--since) or incremental."""
    if opts.full_refresh or (not marks and opts.since is None):
        return "full"
    return "since" if opts.since is not None else "incremental"


def starts(
    opts: Options, mode: str, marks: runs.Marks, entity_type: EntityType, servers: set[str]
) -> crawl.Starts | datetime | None:
    """Where an incremental type is read from: None (everything: a full run), one instant (--since),
    or per backup server its watermark minus the lookback, a server without one (new, or new to
    this type) read from the beginning. `servers`: those EM lists now, and those with watermarks."""
    if mode == "full":
        return None
    if mode == "since":
        return opts.since
    own = marks.get(entity_type.name, {})
    return {s: own[s] - opts.lookback if s in own else None for s in servers | set(own)}


def run(
    eng: Engine,
    url: str,
    user: str,
    password: str,
    *,
    verify: bool | str = True,
    options: Options | None = None,
    transport=None,
    progress: Progress | None = None,
) -> Summary:
    """Crawl one Enterprise Manager into the warehouse. Raises a VeeamEtlError on failure.

    `progress(summary, type_name)` is called after every committed batch (for a display).
    """
    opts = options or Options()
    settings.em_url(url, "the EM URL")  # before anything is recorded: a configuration error, not a failed run
    source = opts.source or source_name(url)
    started = time.monotonic()
    db.ensure_current(eng)
    runs.acquire_lock(eng, source)
    try:
        with eng.connect() as conn:
            marks = runs.watermarks(conn, source)
        mode = "repair" if opts.repair else mode_of(opts, marks)
        run_id = runs.start_run(eng, source, mode)
        summary = Summary(run_id, source, mode)
        log.info("run %d: %s load of %s", run_id, mode, source)
        client: EMClient | None = None
        try:
            client = EMClient(
                url,
                user,
                password,
                verify=verify,
                timeout=opts.timeout,
                page_size=opts.page_size,
                retry=opts.retry,
                transport=transport,
                concurrency=opts.concurrency,
            )
            ahead = opts.ahead or 2 * opts.concurrency
            with client, ThreadPoolExecutor(ahead, thread_name_prefix="em") as pool:
                loading = Loading(
                    eng, client, summary, pool, ahead, progress, opts.worker_processes, opts.batch_rows
                )
                try:
                    _load_everything(loading, opts, mode, marks)
                finally:
                    loading.close()
            summary.finish("succeeded", client, started)
            # a type refused part-way keeps its watermarks: what it has not read is read next time
            marks_now = {t: m for t, m in loading.marks.items() if t not in summary.refused}
            with eng.begin() as conn:
                runs.advance_watermarks(conn, source, run_id, marks_now)
                runs.finish_run(conn, run_id, "succeeded", summary.stats())
            return summary
        except BaseException as exc:
            summary.finish("failed", client, started)
            try:
                with eng.begin() as conn:
                    runs.finish_run(
                        conn, run_id, "failed", summary.stats(), error=str(exc) or type(exc).__name__
                    )
            except SQLAlchemyError as db_exc:
                log.error("could not record the failed run: %s", db_exc)
            raise
    finally:
        runs.release_lock(eng, source)
