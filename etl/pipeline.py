"""run(): one load of one Enterprise Manager, joining the stages — plan (etl.plan) → fetch (the
Fetcher, etl.crawl) → store, parents first (etl.store) → the sessions still running, the retention
sweep and the completeness check when due → what the warehouse works out (etl.derive) — under the
run's lock and record (etl.runs). The one module that knows every stage; nothing below imports it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from functools import partial
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from . import db, derive, filters, logs, plan, registry, runs, schema, settings, stopping
from .client import redact_url
from .completeness import Count, compare
from .crawl import Fetcher, Prefetch
from .errors import AccessDenied, SourceError
from .registry import EntityType
from .retry import RetryPolicy
from .runs import Summary
from .settings import Options
from .store import Loaded, Progress, Store

log = logging.getLogger(__name__)

__all__ = ["Options", "RetryPolicy", "Summary", "map_jobs", "run", "source_name", "sweep_type"]


def source_name(url: str) -> str:
    """The identity of an Enterprise Manager in the warehouse: its API URL, lower-cased, no credentials."""
    parts = urlsplit(redact_url(url))
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


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

    `progress(summary, type_name)` is called after every committed transaction (for a display).
    What the summary counts advances only with what was committed; the watermarks only when the
    whole run has succeeded.
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
        mode = plan.mode(opts, marks)
        run_id = runs.start_run(eng, source, mode)
        summary = Summary(run_id, source, mode)
        log.info("run %d: %s load of %s", run_id, mode, source)
        fetcher: Fetcher | None = None
        try:
            fetcher = Fetcher(url, user, password, verify=verify, options=opts, transport=transport)
            with fetcher:
                this = _Run(eng, fetcher, summary, opts, marks, progress)
                this.load_everything()
            stopping.check()  # a stop a library swallowed (etl.stopping._unraisable): not a success
            summary.finish("succeeded", fetcher, started)
            # a type refused part-way keeps its watermarks: what it has not read is read next time
            marks_now = {t: m for t, m in this.store.marks.items() if t not in summary.refused}
            with eng.begin() as conn:
                runs.advance_watermarks(conn, source, run_id, marks_now)
                runs.finish_run(conn, summary)
            return summary
        except BaseException as exc:
            summary.finish("failed", fetcher, started)
            try:
                with eng.begin() as conn:
                    runs.finish_run(conn, summary, error=logs.redact(str(exc)) or type(exc).__name__)
            except SQLAlchemyError as db_exc:
                log.error("could not record the failed run: %s", db_exc)
            raise
    finally:
        runs.release_lock(eng, source)


class _Run:
    """One run under way: what it asks EM (`fetcher`), where it writes (`store`), and the stages."""

    def __init__(
        self,
        eng: Engine,
        fetcher: Fetcher,
        summary: Summary,
        opts: Options,
        marks: runs.Marks,
        progress: Progress | None,
    ):
        self.eng, self.fetcher, self.summary, self.opts, self.marks = eng, fetcher, summary, opts, marks
        self.mode, self.source = summary.mode, summary.source
        self.store = Store(eng, fetcher, summary, opts, progress)
        self.now = self.store.now

    def load(
        self,
        entity_type: EntityType,
        filter: str | None = None,
        first: Prefetch | None = None,
        collect: bool = False,
        moves_watermarks: bool = False,
    ) -> Loaded:
        """Every row of one query (`first`: its page 1, asked for already), stored (etl.store)."""
        pages = self.fetcher.pages(entity_type, filter, first=first)
        return self.store.load(entity_type, pages, collect, moves_watermarks)

    def lookup(self, entity_type: EntityType, uids: Iterable[str]) -> set[str]:
        """Load the given rows from EM by `UID==` (UIDS_PER_QUERY OR-ed a query); the uids EM returned."""
        wanted = set(uids)
        found: set[str] = set()
        for flt in filters.one_of("UID", sorted(wanted)):
            found |= self.load(entity_type, flt, collect=True).uids
        return found & wanted

    def load_everything(self) -> None:
        """Every entity type in registry order (inventory whole, the rest by windows, then the children
        of parents new to the warehouse); then the unfinished sessions, the retention sweep and the
        completeness check when they are due, and what the warehouse works out itself. A repair run
        (`veeam-etl verify --repair`) reads no windows: it sweeps, checks and reloads."""
        types = list(registry.TYPES.values())
        # Each query's page 1 is asked for while the query before it is stored: a run of some twenty
        # queries then waits for no round trip between them. Not past the backup servers: the windows
        # of the types after them are per backup server they list.
        todo = self._queries(types)
        query, first = next(todo, None), None
        while query is not None:
            i, entity_type, window = query
            self.store.parents.forget_all_but(types[i:])
            if entity_type is registry.BACKUP_SERVER:
                self.load(entity_type, window.filter, first, moves_watermarks=window.moves_watermarks)
                query, first = next(todo, None), None
                continue
            query, current = next(todo, None), first
            first = self.fetcher.first_page(query[1], query[2].filter) if query else None
            loaded = self.load(entity_type, window.filter, current, moves_watermarks=window.moves_watermarks)
            if loaded.rows == 0 and window.overlaps and entity_type.name not in self.summary.refused:
                self._check_filter(entity_type, window)  # a refused type answered nothing: no proof
        if self.mode in ("incremental", "since"):
            self.finish_stragglers()
        with self.eng.connect() as conn:
            last = runs.last_verification(conn, self.source)
        checking = plan.verify_due(self.opts, self.mode, last, self.now)
        self.sweep(before_check=checking)  # first: it makes equal totals trustworthy
        if checking:
            self.verify()
        stopping.check()  # what follows asks EM little or nothing: a stop asked for is taken here
        self.work_out()

    def _queries(self, types: list[EntityType]) -> Iterator[tuple[int, EntityType, plan.Window]]:
        """(position in load order, type, window), each type's windows worked out when reached."""
        if self.mode == "repair":
            return
        known = {server for per_server in self.marks.values() for server in per_server}
        for i, entity_type in enumerate(types):
            servers = self.store.listed.get(registry.BACKUP_SERVER.table, set()) | known
            begin = plan.starts(self.opts, self.mode, self.marks, entity_type, servers)
            if registry.BACKUP_SERVER.name in self.summary.refused and isinstance(begin, dict):
                begin = plan.one_start(begin)
            for window in plan.windows(entity_type, begin):
                yield i, entity_type, window
            # worked out once the windows above are asked for: the parents are of earlier types
            for flt in self._children_of_new_parents(entity_type, begin):
                yield i, entity_type, plan.Window(flt, None)

    def _children_of_new_parents(
        self, entity_type: EntityType, begin: plan.Starts | datetime | None
    ) -> list[str]:
        """Filters that read the entities of `entity_type` whose parent is new to the warehouse in
        this run and outside its windows (plan.parents_outside_windows), whatever their creation times."""
        parent = registry.TYPES.get(entity_type.parent_type or "")
        if parent is None or begin is None:
            return []
        with self.eng.connect() as conn:
            new = derive.new_parents(conn, parent, self.source, self.now)
        wanted = plan.parents_outside_windows(new, begin)
        if wanted:
            log.info(
                "reading the %s of %d %s new to the warehouse", entity_type.name, len(wanted), parent.table
            )
        return list(filters.children_of(entity_type, wanted))

    def _check_filter(self, entity_type: EntityType, window: plan.Window) -> None:
        """EM answered an incremental window with no row at all. Every such window overlaps rows the
        warehouse holds (it starts `lookback` before the newest one loaded per backup server), so EM
        did not read the window's filter as meant — a filter EM misreads (the `BackupServerUid`
        urn-vs-GUID form is undocumented) answers an empty result, not an error (em-api.md, "EM
        changes while it is read") — unless those rows are gone from EM: sessions that young never
        are (EM purges weeks-old history only), points can be (a backup deleted with its files), so
        for them EM is asked for a few by UID first. Raises SourceError naming the filter: loading
        nothing and succeeding would lose every later row silently."""
        assert window.filter is not None
        with self.eng.connect() as conn:
            held = derive.held_in_window(
                conn, entity_type, self.source, window.starts, filters.UIDS_PER_QUERY
            )
        if not held:
            return
        if entity_type.final_state is None:
            flt = next(filters.one_of("UID", held))
            listed = {uid for chunk in self.fetcher.uids(entity_type, flt) for uid in chunk}
            if not listed:
                log.info(
                    "%s: EM answered no row to a window and lists none of the %d rows the warehouse holds "
                    "inside it: they are gone from EM (the retention sweep marks them)",
                    entity_type.name,
                    len(held),
                )
                return
            proof = f"yet lists {len(listed)} of the {len(held)} rows the warehouse holds inside it when asked by UID"
        else:
            proof = f"although the warehouse holds {len(held)} or more of its sessions inside it"
        shown = window.filter if len(window.filter) <= 600 else window.filter[:600] + "…"
        raise SourceError(
            f"EM answered no {entity_type.name} to the window filter {shown!r}, {proof}: EM did not read the "
            'filter as meant (em-api.md, "EM changes while it is read"); nothing was loaded from it and the '
            "watermarks stay where they are"
        )

    def finish_stragglers(self) -> None:
        """Sessions the warehouse last saw unfinished that EM now reports neither unfinished nor ended
        since the window start (collected late, or removed): read by UID until they finish; and the
        task sessions of those job sessions, which may have been added since (plan.sessions_to_reread)."""
        refused = self.summary.refused
        sessions = [t for t in registry.TYPES.values() if t.final_state is not None and t.name not in refused]
        with self.eng.connect() as conn:
            unfinished = {
                t.name: [
                    uid
                    for uid in runs.unfinished(conn, self.source, schema.table(t.table), str(t.final_state))
                    if uid not in self.store.running
                ]
                for t in sessions
            }
            named = {
                t.name: runs.values_of(conn, schema.table(t.table), t.by_parent.column, unfinished[t.name])
                for t in sessions
                if t.by_parent is not None
            }
        reread = plan.sessions_to_reread(sessions, unfinished, named)
        if any(reread.values()):
            log.info("re-reading %s", ", ".join(f"{len(v)} {k}" for k, v in reread.items() if v))
        for t in sessions:
            for flt in plan.reread_filters(t, reread[t.name]):
                self.load(t, flt)

    def sweep(self, before_check: bool = False) -> None:
        """Retention: inventory types against what this run listed (no request); the others against
        EM's uid lists when due (plan.sweep_due, plan.sweep_from). A row is marked deleted only once
        EM did not return it asked by UID (`_sweep_type`). A type EM refused to this account (HTTP
        403) is never swept: what it lists is unknown, not empty."""
        summary = self.summary
        with self.eng.connect() as conn:
            last = runs.last_sweep(conn, self.source)
        due = plan.sweep_due(self.opts, self.mode, last, self.now, before_check)
        before = self.fetcher.requests
        for entity_type in derive.swept_types():
            if entity_type.name in summary.refused:
                continue
            fresh = entity_type.table in self.store.fresh
            placeholders = False
            if fresh and entity_type.time_filter is not None:
                with self.eng.connect() as conn:
                    placeholders = derive.has_placeholders(conn, entity_type)
            listed: Iterable[list[str]]
            match plan.sweep_from(entity_type, self.mode, fresh, placeholders, due):
                case "run":
                    listed = [sorted(self.store.listed.get(entity_type.table, set()))]
                case "em":  # lazily: pages as the sweep reads them
                    listed = self.fetcher.uids(entity_type, parallel=True)
                case _:
                    continue
            try:
                gone, back = self._sweep_type(entity_type, listed)
            except AccessDenied as exc:  # rolled back: nothing marked
                self.store.refuse(entity_type, exc)
                continue
            summary.swept[entity_type.table] = {"deleted": gone, "back": back}
        summary.sweep_requests = self.fetcher.requests - before
        if due:
            with self.eng.begin() as conn:
                runs.record_sweep(conn, self.source, summary.run_id, self.now)

    def verify(self) -> None:
        """EM's counts against the warehouse's over the last `verify_days` up to where this run started
        (etl.completeness), and before them too in a full load, and what differs reloaded in this run
        through the same paging loop."""
        summary, store = self.summary, self.store
        before = self.fetcher.requests
        until = self.now.replace(microsecond=0)
        servers = store.listed.get(registry.BACKUP_SERVER.table)
        if servers is None:  # a repair run read no inventory: EM's list of backup servers
            try:
                servers = {uid for chunk in self.fetcher.uids(registry.BACKUP_SERVER) for uid in chunk}
            except AccessDenied as exc:  # the servers the warehouse knows are compared
                store.refuse(registry.BACKUP_SERVER, exc)
                servers = set()
        result = compare(
            self.eng,
            self.fetcher,
            self.source,
            until - timedelta(days=self.opts.verify_days),
            until,
            servers,
            reload=self._reload,
            refused=store.refuse,
            skip=summary.refused,
            history=self.mode == "full",  # a full load is checked back to EM's oldest row
        )
        result.requests = self.fetcher.requests - before
        summary.verification = result
        log.info(
            "completeness: %d counts compared, %d differ, %d rows reloaded (%d requests)",
            len(result.counts),
            len(result.differences),
            result.reloaded,
            result.requests,
        )

    def _reload(self, count: Count) -> int:
        """Read again exactly what one differing bucket covers (a type on a backup server on a day, or
        the points and files of some backups) and, for a type with `deleted_at`, mark what it no
        longer lists (once EM did not return it asked by UID). Returns the rows written."""
        summary, bucket = self.summary, count.bucket
        entity_type = bucket.entity_type
        before = summary.written
        read: set[str] = set()
        for flt in bucket.filters():
            read |= self.load(entity_type, flt, collect=True).uids
        table = schema.table(entity_type.table)
        if "deleted_at" in table.c:
            gone, back = self._sweep_type(entity_type, [sorted(read)], within=bucket.where(table))
            counts = summary.swept.setdefault(entity_type.table, {"deleted": 0, "back": 0})
            counts["deleted"] += gone
            counts["back"] += back
        return summary.written - before

    def work_out(self) -> None:
        """What no entity says (etl.derive): the VM restore points of backup tasks, then (after the
        sessions: agent jobs reach the warehouse as their parents) the jobs of backups and replicas,
        from EM's links first (they cost no request), then from EM's answer to `JobUid==` queries."""
        summary = self.summary
        with (
            self.eng.begin() as conn
        ):  # first: the jobs of backups follow the restore points their tasks made
            linked = derive.infer_restore_points(conn, self.source, summary.run_id, self.now)
        summary.worked_out[f"{registry.BACKUP_TASK_SESSION.table}.vm_restore_point_uid"] = linked
        if self.mode == "repair":
            return
        for entity_type in registry.TYPES.values():
            if entity_type.job_types is not None and entity_type.name not in summary.refused:
                with self.eng.begin() as conn:
                    by_links = derive.jobs_by_links(conn, entity_type, self.source)
                try:
                    by_query = self._map_jobs(entity_type)
                except AccessDenied as exc:
                    self.store.refuse(entity_type, exc)
                    by_query = 0
                summary.worked_out[f"{entity_type.table}.job_uid"] = by_links + by_query

    def _sweep_type(
        self, entity_type: EntityType, listed: Iterable[list[str]], within=None
    ) -> tuple[int, int]:
        lookup = partial(self.lookup, entity_type)
        return sweep_type(
            self.eng, entity_type, self.source, self.summary.run_id, self.now, listed, lookup, within
        )

    def _map_jobs(self, entity_type: EntityType) -> int:
        return map_jobs(self.eng, self.fetcher, entity_type, self.source, self.summary.run_id)


def sweep_type(
    eng: Engine,
    entity_type: EntityType,
    source: str,
    run_id: int,
    now: datetime,
    listed: Iterable[list[str]],
    lookup: Callable[[list[str]], set[str]],
    within: ColumnElement[bool] | None = None,
) -> tuple[int, int]:
    """Retention of one type: the live rows of `source` (`within` narrows them) that EM's uid lists
    (`listed`) lack are candidates only (a uid list is no proof of absence: etl.crawl); `lookup`
    asks EM for them by UID, loading what it returns, and gives back the uids it returned; only the
    others are marked deleted. Rows listed again lose the mark (etl.derive.unlisted, mark_deleted).
    Returns (marked deleted, brought back)."""
    candidates, back = derive.unlisted(eng, entity_type, source, run_id, listed, within)
    found = lookup(candidates) if candidates else set()
    gone = derive.mark_deleted(eng, entity_type, sorted(set(candidates) - found), now)
    if gone or back or found:
        log.info(
            "%s: %d no longer listed by EM (deleted_at set), %d listed again, %d missing from its uid "
            "lists but returned by UID",
            entity_type.table,
            gone,
            back,
            len(found),
        )
    return gone, back


def map_jobs(eng: Engine, fetcher: Fetcher, entity_type: EntityType, source: str, run_id: int) -> int:
    """Fill `job_uid` of rows of `entity_type` still without one from EM's answer to
    `type=<type>&filter=JobUid==<job>` (em-backup-side.md §5, §9), asked only for rows new to the
    warehouse, so a quiet run asks nothing: the jobs that own no row yet one by one, then a child
    backup takes its parent's job, then the other jobs of the rows' backup servers, grouped
    (Fetcher.owners), so that a backup no job owns costs a request or two, not one per job.
    Returns rows filled."""
    with eng.connect() as conn:
        unmapped = derive.unmapped(conn, entity_type, source)
        if not unmapped:
            return 0
        candidates = derive.job_candidates(conn, entity_type, source, {s for _, s in unmapped})
    wanted = {uid for uid, _ in unmapped}
    server_of = dict(unmapped)
    owners, asked = fetcher.owners(entity_type, "JobUid", plan.first_jobs(candidates), wanted)
    with eng.begin() as conn:
        mapped = derive.set_jobs(conn, entity_type, owners, run_id)
        if wanted:
            mapped += derive.jobs_from_parents(conn, entity_type, wanted, run_id)
    if wanted:
        groups = plan.job_groups(candidates, {server_of[uid] for uid in wanted})
        owners, more = fetcher.owners(entity_type, "JobUid", groups, wanted)
        asked += more
        with eng.begin() as conn:
            mapped += derive.set_jobs(conn, entity_type, owners, run_id)
    log.info(
        "%s: %d of %d new rows mapped to their job (%d queries)",
        entity_type.table,
        mapped,
        len(unmapped),
        asked,
    )
    return mapped
