"""run(): the one place that knows every stage — crawl → transform → load — plus the run record.

A batch of whole query pages (about 10,000 rows) is one transaction: each page, as it arrives, its
missing parents (fetched by link, or recorded from the link when EM cannot give them), then its
rows; then the lock heartbeat. So every commit leaves the warehouse consistent, and a killed run
loses at most the batch in flight. Watermarks advance only when the whole run has committed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from . import crawl, db, parse, runs, schema, transform
from .client import EMClient, RetryPolicy, redact_url
from .crawl import Page, Reject
from .errors import DataError, LoadError
from .load import Loader
from .reader import Readers
from .transform import Entity, Rows

log = logging.getLogger(__name__)

TABLES = {t.name: t for t in schema.ENTITY_TABLES}
KNOWN_LIMIT = 50_000  # uids remembered per parent table: a few MB, whatever the estate


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


def _parent_columns(table) -> list[tuple[str, str]]:
    """(fk column, parent table) pairs of an entity table, from the schema's foreign keys."""
    return [
        (c.name, fk.column.table.name)
        for c in table.columns
        for fk in c.foreign_keys
        if fk.column.table.name in TABLES
    ]


@dataclass
class Options:
    page_size: int = 500
    concurrency: int = 4  # requests in flight: gentle enough for a production EM
    # pages fetched or being read ahead of the loader (None: 2 x concurrency). More than
    # `concurrency`, so that requests keep going out while fetched pages wait for a reader process.
    ahead: int | None = None
    full_refresh: bool = False
    since: datetime | None = None
    lookback: timedelta = timedelta(
        hours=1
    )  # running sessions are re-read by UID; this covers late collection
    timeout: float = 60.0
    batch_rows: int = 10_000  # rows per transaction (whole pages): fewer commits, bounded loss on a kill
    # processes that parse and transform the pages of long queries, beside the one that loads
    reader_processes: int = field(default_factory=lambda: min(2, max(1, (os.cpu_count() or 1) - 1)))
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    source: str | None = None  # defaults to source_name(url)


@dataclass
class Summary:
    run_id: int
    source: str
    mode: str
    status: str = "running"
    tables: dict[str, dict[str, int]] = field(
        default_factory=lambda: {name: {"inserted": 0, "updated": 0} for name in TABLES}
    )
    parents_by_link: int = 0  # parents fetched by following a link
    parents_from_links: int = 0  # parents EM could not give, recorded from what the link says
    quarantined: int = 0
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

    def stats(self) -> dict:
        return {
            "tables": self.tables,
            "parents_from_links": self.parents_from_links,
            "requests": self.requests,
            "retries": self.retries,
            "quarantined": self.quarantined,
            "foreign_links": self.foreign_links,
        }


Progress = Callable[[Summary, str], None]


class _Run:
    def __init__(
        self,
        eng: Engine,
        client: EMClient,
        summary: Summary,
        pool: ThreadPoolExecutor,
        ahead: int,
        progress: Progress | None,
        reader_processes: int = 0,
        batch_rows: int = 1,
    ):
        self.eng, self.client, self.summary, self.pool, self.ahead = eng, client, summary, pool, ahead
        self.progress = progress
        self.reader_processes = reader_processes
        self.batch_rows = batch_rows
        self._readers: Readers | None = None
        self.marks: dict[str, datetime] = {}
        self.rejected: set[str] = set()  # uids/hrefs quarantined in this run (few)
        self.running: set[str] = set()  # sessions EM reported as still running in this run
        # parents confirmed in the warehouse during this run, for the parent tables every page asks about
        self.known: dict[str, set[str]] = {
            name: set() for name in ("backup_servers", "replica_job_sessions", "vm_replica_points")
        }
        self.now = schema.now_utc()
        with eng.connect() as conn:  # tables empty at the start: a first load needs no comparisons
            self.fresh = frozenset(
                t.name for t in schema.ENTITY_TABLES if conn.execute(select(t.c.uid).limit(1)).first() is None
            )

    def readers(self) -> Readers | None:
        """Reader processes for long queries, started on first need (None when configured off)."""
        if self._readers is None and self.reader_processes > 0:
            self._readers = Readers(self.reader_processes)
        return self._readers

    def close(self) -> None:
        if self._readers is not None:
            self._readers.close()

    def load_pages(self, type_name: str, filter: str | None = None) -> None:
        """Every page of a query, committed a batch of pages (about `batch_rows` rows) at a time."""
        pages = crawl.pages(self.client, self.pool, type_name, filter, self.ahead, self.readers)
        while self._load_batch(type_name, pages):
            pass

    def _load_batch(self, type_name: str, pages: Iterator[Page]) -> bool:
        """One transaction: pages stored as they arrive (each page's missing parents, then its rows and
        quarantined entities) until about `batch_rows` rows, then the lock heartbeat. Storing a page
        while the next ones are fetched keeps both busy. A failure rolls the whole batch back and
        names the table and a page. False when the pages have run out."""
        s = self.summary
        first, rows, more = None, 0, True
        newest: datetime | None = None
        running: list[str] = []
        try:
            with self.eng.begin() as conn:
                loader = Loader(conn, s.source, s.run_id, self.now, self.fresh)
                for page in pages:
                    first = first or page.url
                    self._store(loader, page.rows)
                    for reject in page.rejects:
                        self._quarantine(conn, reject)
                    newest = max(filter(None, [newest, *page.rows.column("creation_time_utc")]), default=None)
                    if type_name in crawl.FINAL_STATE:
                        running += [
                            uid
                            for uid, end in zip(
                                page.rows.column("uid"), page.rows.column("end_time_utc"), strict=True
                            )
                            if end is None
                        ]
                    rows += len(page.rows.values)
                    if rows >= self.batch_rows:
                        break
                else:
                    more = False
                runs.heartbeat(conn, s.source, s.run_id)
        except SQLAlchemyError as exc:
            raise LoadError(
                f"loading {type_name} pages failed and was rolled back: {type(exc).__name__}: "
                f"{getattr(exc, 'orig', None) or exc} (first page {first})"
            ) from None
        # what the run learnt from this batch counts once it is committed
        if newest is not None and (type_name not in self.marks or newest > self.marks[type_name]):
            self.marks[type_name] = newest
        self.running.update(running)
        if self.progress and first is not None:
            self.summary.requests = self.client.requests
            self.progress(self.summary, type_name)
        return more

    def _quarantine(self, conn, reject: Reject) -> None:
        log.warning("quarantined %s %s: %s", reject.type_name, reject.href, reject.error)
        runs.quarantine(
            conn,
            self.summary.source,
            self.summary.run_id,
            reject.type_name,
            reject.href,
            reject.uid,
            reject.error,
            reject.excerpt,
        )
        key = reject.uid or _uid_or_href(reject.href, reject.type_name)
        if key not in self.rejected:  # one entity, counted once however often we met it
            self.rejected.add(key)
            self.summary.quarantined += 1

    def _store(self, loader: Loader, rows: Rows) -> None:
        """Upsert rows of one table, after making sure every parent they name is in the warehouse."""
        if not rows.values:
            return
        self._ensure_parents(loader, rows)
        inserted, updated = loader.upsert(rows)
        self._remember(rows.table, rows.column("uid"))
        counts = self.summary.tables[rows.table]
        counts["inserted"] += inserted
        counts["updated"] += updated

    def _ensure_parents(self, loader: Loader, rows: Rows) -> None:
        for column, parent_table in _parent_columns(TABLES[rows.table]):
            known = self.known.get(parent_table, set())
            unsure = [
                uid for uid in dict.fromkeys(rows.column(column)) if uid is not None and uid not in known
            ]
            if not unsure:
                continue
            present = loader.present(TABLES[parent_table], unsure)
            self._remember(parent_table, present)
            missing = set(unsure) - present
            if missing:
                self._add_parents(
                    loader, parent_table, {uid: rows.link(column, uid) for uid in sorted(missing)}
                )

    def _remember(self, table: str, uids) -> None:
        """Note parents known to be in the warehouse, so the next page need not ask (few tables, bounded)."""
        known = self.known.get(table)
        if known is not None:
            if len(known) > KNOWN_LIMIT:
                known.clear()
            known.update(uids)

    def _add_parents(self, loader: Loader, parent_table: str, links: dict) -> None:
        """Fetch missing parents by their links (in parallel); record those EM cannot give from the link."""
        type_name = transform.TYPE_OF_TABLE[parent_table]
        # a parent quarantined earlier in this run is not asked for again: it would be rejected again
        with_link = [
            (uid, link) for uid, link in links.items() if link is not None and uid not in self.rejected
        ]
        fetched = self.pool.map(lambda item: crawl.fetch_parent(self.client, item[1], type_name), with_link)
        found: list[Entity] = []
        placeholders: list[dict] = []
        for (uid, link), got in zip(with_link, fetched, strict=True):
            if isinstance(got, Entity) and got.row["uid"] == uid:
                found.append(got)
                continue
            if isinstance(got, Reject):
                self._quarantine(loader.conn, got)
            row = transform.placeholder(parent_table, link)
            row["uid"] = uid  # the child's own reference wins over the href's last segment
            placeholders.append(row)
        placeholders += [
            transform.placeholder(parent_table, link) | {"uid": uid}
            if link
            else {"uid": uid, "href": None, "name": None, "placeholder": True}
            for uid, link in links.items()
            if link is None or uid in self.rejected
        ]
        self.summary.parents_by_link += len(found)
        self.summary.parents_from_links += len(placeholders)
        for p in placeholders:
            log.warning("recorded %s %s from a link only: EM did not return it", parent_table, p["uid"])
        self._store(loader, transform.rows_of(parent_table, found))
        if placeholders:
            inserted, _ = loader.upsert(transform.rows(parent_table, placeholders))
            self.summary.tables[parent_table]["inserted"] += inserted

    def finish_stragglers(self) -> None:
        """Sessions the warehouse last saw running that EM now reports neither running nor ended
        since the window start (collected late, or removed): read by UID until they finish."""
        with self.eng.connect() as conn:
            jobs = [
                uid
                for uid in runs.unfinished(conn, self.summary.source, schema.replica_job_sessions)
                if uid not in self.running
            ]
            tasks = [
                uid
                for uid in runs.unfinished(conn, self.summary.source, schema.replica_task_sessions)
                if uid not in self.running
            ]
            parents = set(jobs) | runs.job_sessions_of(conn, tasks)
        if jobs or tasks:
            log.info("re-reading %d job and %d task sessions by UID", len(jobs), len(tasks))
        for f in crawl.uid_filters("UID", jobs):
            self.load_pages("ReplicaJobSession", f)
        for f in crawl.uid_filters("JobSessionUid", sorted(parents)):
            self.load_pages("ReplicaTaskSession", f)


def plan(opts: Options, marks: dict[str, datetime]) -> tuple[str, dict[str, datetime | None]]:
    """The mode and, per session type, the CreationTime to query from (None: everything).

    The first run on an empty warehouse and --full-refresh read everything; --since reads from the
    given instant; otherwise each type is read from its watermark minus the lookback.
    """
    if opts.full_refresh or (not marks and opts.since is None):
        return "full", dict.fromkeys(crawl.SESSION_TYPES)
    if opts.since is not None:
        return "since", dict.fromkeys(crawl.SESSION_TYPES, opts.since)
    return "incremental", {t: marks[t] - opts.lookback if t in marks else None for t in crawl.SESSION_TYPES}


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

    `progress(summary, type_name)` is called after every committed page (for a display).
    """
    opts = options or Options()
    source = opts.source or source_name(url)
    started = time.monotonic()
    db.ensure_current(eng)
    runs.acquire_lock(eng, source)
    try:
        with eng.connect() as conn:
            marks = runs.watermarks(conn, source)
        mode, windows = plan(opts, marks)
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
                job = _Run(
                    eng, client, summary, pool, ahead, progress, opts.reader_processes, opts.batch_rows
                )
                try:
                    job.load_pages("BackupServer")
                    for type_name in crawl.SESSION_TYPES:
                        job.load_pages(type_name, crawl.window_filter(type_name, windows[type_name]))
                    if mode != "full":
                        job.finish_stragglers()
                finally:
                    job.close()
            summary.finish("succeeded", client, started)
            with eng.begin() as conn:
                runs.advance_watermarks(conn, source, run_id, job.marks)
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
