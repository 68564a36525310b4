"""What to ask Enterprise Manager for, and the one paging loop every query of the product goes through.

`pages()` yields every row a query lists, correct while EM inserts and deletes rows between pages
(em-api.md, "EM changes while it is read"): offset pages fetched in parallel a few ahead of the
loader, then for types read by creation time the seams between pages asked again, for inventory a
multi-page answer cross-checked against an atomic uid list. `uids()` pages through uid lists,
`count()` counts, `fetch_parent()` follows a link. Knows the EM dialect (query URLs, filters,
links), not the warehouse.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from urllib.parse import quote

from . import batched, parse, transform
from .client import EMClient
from .errors import ForeignLink, NotFound, ParseError, SourceError
from .parse import Link
from .registry import EntityType
from .transform import Entity, Page, QuarantineRecord, RowBatch
from .workers import ProcessPool

log = logging.getLogger(__name__)

WORKER_PAGES = 8  # a query longer than this is read in worker processes (start-up ~0.1 s)
UIDS_PER_QUERY = 40  # OR-ed UID terms per query: keeps the URL well under common 8 KB limits
FILTER_CHARS = 3000  # characters of filter per query: with the rest, well under common 8 KB URL limits
SEAMS_PER_QUERY = 40  # seams between pages asked again in one query
SEAM_FILTER_BYTES = 6000  # a seam query's filter as sent (percent-encoded): the URL stays under 8 KB
REFS_PAGE_SIZE = 10_000  # uids per References page: one page is one atomic list (EM documents no maximum)
SLICE_TRIES = 3  # readings of one second that holds more rows than a page, until it matches its count
SECOND = timedelta(seconds=1)

Starts = dict[str, datetime | None]  # backup server uid -> creation instant to read from (None: all)
Done = Callable[[int, Page], None]  # told each page (by number) as soon as it is read
T = TypeVar("T")
R = TypeVar("R")


# --- one page ---------------------------------------------------------------------------------------


def fetch_page(
    client: EMClient, url: str, entity_type: EntityType, workers: ProcessPool | None = None
) -> Page:
    """One query page (Entities format), fetched and read here or, with `workers`, in a worker
    process (off this process's GIL). A body that does not parse is fetched again under the same
    retry budget. Raises what `client.get` and `transform.read_page` raise."""
    budget = client.retry_policy.budget()
    while True:
        body = client.get(url, budget)
        try:
            if workers is None:
                return transform.read_page(body, entity_type, url)
            return workers.submit(transform.read_page, body, entity_type, url).result()
        except ParseError as exc:
            client.retry(budget, exc)


def fetch_refs(client: EMClient, url: str, entity_type: EntityType) -> Page:
    """One query page in the References format: its rows are the UIDs as EM gives them. Raises what
    `client.get` and `transform.read_refs` raise."""
    budget = client.retry_policy.budget()
    while True:
        body = client.get(url, budget)
        try:
            return transform.read_refs(body, entity_type, url)
        except ParseError as exc:
            client.retry(budget, exc)


def _query_url(
    client: EMClient,
    entity_type: EntityType,
    filter: str | None,
    page: int = 1,
    format: str = "Entities",
    size: int | None = None,
) -> str:
    if size is None:
        size = entity_type.page_size(client.page_size) if format == "Entities" else REFS_PAGE_SIZE
    sort = entity_type.sort if format == "Entities" else None
    return client.query_url(
        entity_type.name, filter=filter, sort_asc=sort, page=page, page_size=size, format=format
    )


def _fetch(client: EMClient, url: str, entity_type: EntityType, format: str, workers=None) -> Page:
    if format == "Entities":
        return fetch_page(client, url, entity_type, workers)
    return fetch_refs(client, url, entity_type)


class Prefetch:
    """The start of a query asked for while the query before it is still being stored: page 1 (a
    Future of a Page) and, as soon as page 1 tells PagesCount, pages 2.. up to `ahead` (`early`), so
    that a run of many queries waits no round trip between them."""

    def __init__(
        self,
        client: EMClient,
        executor: Executor,
        entity_type: EntityType,
        filter: str | None,
        ahead: int,
        workers: Callable[[], ProcessPool | None] | None,
    ):
        self.early: dict[int, Future] = {}
        self._asked = threading.Event()  # set once `early` holds all it will
        self.page1 = executor.submit(fetch_page, client, _query_url(client, entity_type, filter), entity_type)

        def ask_on(future: Future) -> None:
            try:
                count = future.result().paging.pages if future.exception() is None else None
                if count is not None and count > 1:
                    pool = workers() if workers is not None and count > WORKER_PAGES else None
                    for k in range(2, min(count, ahead + 1) + 1):
                        url = _query_url(client, entity_type, filter, k)
                        self.early[k] = executor.submit(fetch_page, client, url, entity_type, pool)
            except RuntimeError:  # the run is ending (the pool shut down): nobody will read them
                pass
            finally:
                self._asked.set()

        self.page1.add_done_callback(ask_on)

    def result(self) -> Page:
        """Page 1 (raises what fetch_page raises)."""
        return self.page1.result()

    def asked(self) -> dict[int, Future]:
        """The pages after page 1 asked for already, by number (once page 1 is in)."""
        self._asked.wait()
        return self.early


def first_page(
    client: EMClient,
    executor: Executor,
    entity_type: EntityType,
    filter: str | None = None,
    ahead: int = 4,
    workers: Callable[[], ProcessPool | None] | None = None,
) -> Prefetch:
    """Page 1 of a query fetched on `executor`, and pages 2.. up to `ahead` as soon as it is in
    (`Prefetch`): asked for while the query before it is still being stored."""
    return Prefetch(client, executor, entity_type, filter, ahead, workers)


def _in_order(
    executor: Executor | None,
    fn: Callable[[T], R],
    items: Iterable[T],
    ahead: int,
    done: Callable[[T, R], None] | None = None,
    asked: dict | None = None,
) -> Iterator[R]:
    """fn over items on the pool (here, one after the other, without one), at most `ahead` in
    flight, yielding results in order; `done(item, result)` is called as each one is read (on the
    thread that read it). `asked`: futures of items submitted already (a Prefetch's)."""
    if executor is None:
        for item in items:
            result = fn(item)
            if done is not None:
                done(item, result)
            yield result
        return

    def submit(item: T) -> Future:
        future = asked.pop(item, None) if asked else None
        if future is None:
            future = executor.submit(fn, item)
        if done is not None:
            future.add_done_callback(lambda f: f.exception() is None and done(item, f.result()))
        return future

    pending: list[Future] = []
    todo = iter(items)
    for item in todo:
        pending.append(submit(item))
        if len(pending) >= ahead:
            break
    while pending:
        result = pending.pop(0).result()
        nxt = next(todo, None)
        if nxt is not None:
            pending.append(submit(nxt))
        yield result


def _more(page: Page) -> bool:
    """Whether the query has pages after this one (EM's PagesCount, else a Next link)."""
    if page.paging.pages is not None:
        return page.paging.pages > (page.paging.page or 1)
    return bool(page.paging.next_href and page.rows.values)


def _rest(
    client: EMClient,
    executor: Executor | None,
    entity_type: EntityType,
    filter: str | None,
    page1: Page,
    ahead: int,
    format: str = "Entities",
    workers: Callable[[], ProcessPool | None] | None = None,
    done: Done | None = None,
    asked: dict[int, Future] | None = None,
) -> Iterator[Page]:
    """Pages 2.. of a query by offset: in parallel when EM told PagesCount (read in worker processes
    for queries of more than WORKER_PAGES pages), else one after the other by Next links. `asked`:
    those asked for already (Prefetch)."""
    count = page1.paging.pages
    if count is not None:
        pool = workers() if workers is not None and count > WORKER_PAGES and format == "Entities" else None
        numbers = range(2, count + 1)
        yield from _in_order(
            executor,
            lambda k: _fetch(
                client, _query_url(client, entity_type, filter, k, format), entity_type, format, pool
            ),
            numbers,
            max(ahead, len(asked or ())),
            done,
            dict(asked) if asked else None,
        )
        return
    page, seen, k = page1, {page1.url}, 1
    while page.paging.next_href and page.rows.values:
        url = client.resolve(page.paging.next_href)
        if url in seen:
            break  # a server that links a page to itself would loop forever
        seen.add(url)
        k += 1
        page = _fetch(client, url, entity_type, format)
        if done is not None:
            done(k, page)
        yield page


# --- the loop -------------------------------------------------------------------------------------


def pages(
    client: EMClient,
    executor: Executor | None,
    entity_type: EntityType,
    filter: str | None = None,
    ahead: int = 4,
    workers: Callable[[], ProcessPool | None] | None = None,
    first: Prefetch | Future | None = None,
    format: str = "Entities",
) -> Iterator[Page]:
    """Every row EM lists for `type=<entity_type>&filter=<filter>`, as query pages, page 1 first
    (`first` when it was asked for already: see first_page()), then the rest by offset a few ahead
    (`executor` None: one after the other), `workers()` giving worker processes for queries of more
    than WORKER_PAGES pages.

    EM pages by offset into a result it keeps changing (em-api.md, "EM changes while it is read"):
    a row that moves across a page boundary after that page was read is skipped. A one-page answer
    is one moment's view and complete. For a longer one:

    - types read by creation time (their query sorted by it): the seams between pages are asked
      again (`_Seams`), and what they hold that was not read is yielded after the pages;
    - inventory (no time field): one References page of REFS_PAGE_SIZE uids, asked while the pages
      are read, is an atomic list of what EM holds; what it names and the pages did not give is read
      by `UID==` (UIDS_PER_QUERY OR-ed a query);
    - `format="References"` (uid lists; rows are the UIDs as EM gives them): offset pages only. A uid
      list may miss a uid that slid; the loader never infers absence from one alone (etl.reconcile
      looks every candidate up by UID first).

    A row that existed throughout is never missed; a row EM adds is read if it lands past what was
    read (a row EM inserts inside a page already read, with an old creation time, is left to the
    verification of etl.verify). Rows may come twice; the loader upserts by uid.
    """
    if first is not None:
        page1: Page = first.result()
    else:
        page1 = _fetch(client, _query_url(client, entity_type, filter, 1, format), entity_type, format)
    if not _more(page1):
        yield page1
        return
    asked = first.asked() if isinstance(first, Prefetch) else None
    if format != "Entities":
        yield page1
        yield from _rest(client, executor, entity_type, filter, page1, ahead, format)
    elif entity_type.window is not None and entity_type.time_column is not None:
        yield from _by_time(client, executor, entity_type, filter, page1, ahead, workers, asked)
    else:
        yield from _inventory(client, executor, entity_type, filter, page1, ahead, workers, asked)


def uids(
    client: EMClient, executor: Executor | None, entity_type: EntityType, filter: str | None = None
) -> Iterator[list[str]]:
    """The UIDs EM lists of `entity_type` (matching `filter`), a References page (REFS_PAGE_SIZE) at a
    time, as EM gives them. Not a proof of absence: see pages()."""
    for page in pages(client, executor, entity_type, filter, format="References"):
        yield page.rows.column("uid")


def count(client: EMClient, entity_type: EntityType, filter: str | None = None) -> int:
    """How many entities EM lists for the query now: a one-per-page References query. The count is
    read from the rows on the page, not from PagesCount alone: a `pageSize=1` query of an empty
    result may report one page holding no row (em-api.md, "Empty results"). Raises SourceError when
    a page with a row tells no PagesCount."""
    url = _query_url(client, entity_type, filter, 1, "References", size=1)
    page = fetch_refs(client, url, entity_type)
    on_page = len(page.rows.values)
    if on_page == 0:
        return 0
    if page.paging.pages is None:
        raise SourceError("a count query answered without PagingInfo PagesCount", url)
    return max(page.paging.pages, on_page)


def _by_time(
    client: EMClient,
    executor: Executor | None,
    entity_type: EntityType,
    filter: str | None,
    page1: Page,
    ahead: int,
    workers: Callable[[], ProcessPool | None] | None,
    asked: dict[int, Future] | None = None,
) -> Iterator[Page]:
    seams = _Seams(client, executor, entity_type, filter, page1.paging.pages)
    try:
        seams.add(1, page1)
        yield page1
        yield from _rest(
            client, executor, entity_type, filter, page1, ahead, workers=workers, done=seams.add, asked=asked
        )
        yield from seams.results()
    finally:
        seams.stop()


def _inventory(
    client: EMClient,
    executor: Executor | None,
    entity_type: EntityType,
    filter: str | None,
    page1: Page,
    ahead: int,
    workers: Callable[[], ProcessPool | None] | None,
    asked: dict[int, Future] | None = None,
) -> Iterator[Page]:
    def listed() -> list[str]:
        return [uid for chunk in uids(client, None, entity_type, filter) for uid in chunk]

    listing: Future | None = executor.submit(listed) if executor is not None else None
    read: set[str] = set()
    rest = _rest(client, executor, entity_type, filter, page1, ahead, workers=workers, asked=asked)
    for page in _chain(page1, rest):
        read.update(page.rows.column("uid"))
        read.update(r.uid for r in page.quarantined if r.uid)
        yield page
    em = listing.result() if listing is not None else listed()
    missing = [uid for uid in em if transform.key_uid(entity_type, uid) not in read and uid not in read]
    if missing:
        log.info(
            "%s: %d listed but not on the pages read (EM changed meanwhile): read by UID",
            entity_type.name,
            len(missing),
        )
    for flt in uid_filters("UID", missing):
        yield from pages(client, executor, entity_type, flt, ahead, workers)


def _chain(page1: Page, rest: Iterator[Page]) -> Iterator[Page]:
    yield page1
    yield from rest


class _Seams:
    """The seams between the pages of one query read by creation time, asked again.

    A page is one moment's view of a result sorted by creation time: it held every row created
    strictly between its first and its last instant. A row that existed throughout and was not
    read lies at or between two pages' edges: at or before page 1's first instant, between one
    page's last instant and the next page's first, or at or after the last page's last instant
    (what EM added since the pages were counted). Each seam is written to whole seconds (lower
    bounds rounded down, upper bounds up: EM's instants carry up to 7 fractional digits, filters
    are written to the second), AND-ed with the query's own filter, SEAMS_PER_QUERY a query, and
    asked as soon as the pages on both sides of it are read (on the executor, while the loader
    stores pages). What a seam answers beyond the rows read at the pages' edges is new. A seam
    answer longer than a page is read by key; a second holding more rows than a page, as its own
    slice checked against its count.
    """

    def __init__(
        self,
        client: EMClient,
        executor: Executor | None,
        entity_type: EntityType,
        filter: str | None,
        count: int | None,
    ):
        assert entity_type.window is not None and entity_type.time_column is not None
        self.client, self.executor, self.type, self.filter = client, executor, entity_type, filter
        self.field, self.column = entity_type.window, entity_type.time_column
        self.count = count  # pages EM told on page 1 (None: paging by Next links)
        self._lock = threading.RLock()  # without an executor, seams are read under it (as pages are placed)
        self._spans: dict[int, tuple[datetime, datetime] | None] = {}  # read, not yet placed in order
        self._next = 1  # the first page not placed yet
        self._started = False  # a page with rows was placed
        self._last: datetime | None = None  # the last instant of the last page with rows placed
        self._todo: list[tuple[datetime | None, datetime | None]] = []  # seams not asked yet
        self._asked: list[Future | list[Page]] = []
        self._edges: set[str] = set()  # uids of rows read near their page's edges (seams hold them again)
        self._finished = self._stopped = False

    def add(self, number: int, page: Page) -> None:
        """Page `number` has been read (called on the thread that read it, in any order)."""
        at = page.rows.column(self.column)
        times = [t for t in at if t is not None]
        span = (min(times), max(times)) if times else None
        edge: set[str] = set()
        if span is not None:
            low, high = _floor(span[0]) + SECOND, _floor(span[1])
            edge = {
                uid
                for uid, t in zip(page.rows.column("uid"), at, strict=True)
                if t is not None and (t <= low or t >= high)
            }
        with self._lock:
            if self._stopped or self._finished:
                return
            self._spans[number] = span
            self._edges |= edge
            while self._next in self._spans:
                placed = self._spans.pop(self._next)
                self._next += 1
                if placed is None:
                    continue  # a page with no row (past the end after a shrink): its neighbours' seam covers it
                first, last = placed
                if not self._started:
                    self._todo.append((None, first))
                    self._started = True
                elif self._last is not None and first >= self._last:
                    self._todo.append((self._last, first))
                # else the pages overlap (EM inserted before the later one): nothing slid between them
                self._last = last
            if self.count is not None and self._next > self.count:
                self._finish()
            else:
                self._ask(final=False)

    def _finish(self) -> None:
        """Every page is placed: the seam after the last page (or, if no page held a row, the whole
        query again), and every seam not asked yet. Under the lock."""
        self._todo.append((self._last, None) if self._started else (None, None))
        self._finished = True
        self._ask(final=True)

    def _ask(self, final: bool) -> None:
        """Ask the seams waiting, SEAMS_PER_QUERY a query (the last few too when `final`). Under the lock."""
        while self._todo and (final or len(self._todo) >= SEAMS_PER_QUERY):
            chunk, self._todo = self._chunk(self._todo)
            if self.executor is None:
                self._asked.append(self._read(chunk))
                continue
            try:
                self._asked.append(self.executor.submit(self._read, chunk))
            except RuntimeError:  # the run is ending (the pool shut down): nobody will read it
                self._stopped = True
                return

    def _chunk(self, seams: list) -> tuple[list, list]:
        """As many seams as fit one query (SEAMS_PER_QUERY, SEAM_FILTER_BYTES with the query's filter)."""
        room = SEAM_FILTER_BYTES - (len(quote(self.filter, safe="")) + 10 if self.filter else 0)
        taken: list = []
        for seam in seams[:SEAMS_PER_QUERY]:
            room -= len(quote(_seam_term(self.field, *seam) or "", safe="")) + 3
            if taken and room < 0:
                break
            taken.append(seam)
        return taken, seams[len(taken) :]

    def results(self) -> Iterator[Page]:
        """After the last page: what the seams hold that was not read, as pages."""
        with self._lock:
            if not self._finished and not self._stopped:
                self._finish()  # paging by Next links: the count of pages is known only now
            asked = list(self._asked)
        for item in asked:
            yield from item.result() if isinstance(item, Future) else item

    def stop(self) -> None:
        """The loader is done with this query (or gave up on it): ask nothing more."""
        with self._lock:
            self._stopped = True

    def _read(self, seams: list[tuple[datetime | None, datetime | None]]) -> list[Page]:
        """One seam query, its rows not read already; a seam answer longer than a page is read on by
        key (`time >= the last second read`, ties read again and dropped by uid)."""
        base = _and(self.filter, _seam_filter(self.field, seams))
        # a seam holds the rows at its two edges (a few): room for all of them on one page
        size = max(self.type.page_size(self.client.page_size), 4 * len(seams))
        seen: set[str] = set()
        out: list[Page] = []
        lower: datetime | None = None
        while True:
            flt = base if lower is None else _and(base, f"{self.field}>={_instant(lower)}")
            page = fetch_page(self.client, _query_url(self.client, self.type, flt, size=size), self.type)
            out.append(self._new(page, seen))
            if not _more(page):
                return out
            times = [t for t in page.rows.column(self.column) if t is not None]
            if not times:
                return out
            last = _floor(max(times))
            if lower is not None and last <= lower:  # one second holds more rows than a page
                out += self._second(base, lower, seen)
                lower += SECOND
            else:
                lower = last

    def _second(self, base: str | None, second: datetime, seen: set[str]) -> list[Page]:
        """Every row of one second that holds more rows than a page: its own slice read by offset,
        read again (SLICE_TRIES at most) until what was read covers the slice's count."""
        flt = _and(base, f"{self.field}>={_instant(second)};{self.field}<{_instant(second + SECOND)}")
        out: list[Page] = []
        for _ in range(SLICE_TRIES):
            read: set[str] = set()
            page1 = fetch_page(self.client, _query_url(self.client, self.type, flt), self.type)
            for page in _chain(page1, _rest(self.client, None, self.type, flt, page1, 1)):  # plain offsets
                read.update(page.rows.column("uid"))
                out.append(self._new(page, seen))
            expected = count(self.client, self.type, flt)
            if len(read) >= expected:
                return out
        log.warning(
            "%s: the second %s changed while it was read %d times; the verification checks it again",
            self.type.name,
            _instant(second),
            SLICE_TRIES,
        )
        return out

    def _new(self, page: Page, seen: set[str]) -> Page:
        """The page with only the rows neither read at a page's edge nor earlier in this seam query."""
        uids = page.rows.column("uid")
        with self._lock:
            keep = [i for i, uid in enumerate(uids) if uid not in seen and uid not in self._edges]
        seen.update(uids)
        rows = page.rows
        values = [rows.values[i] for i in keep]
        quarantined = [r for r in page.quarantined if r.uid not in seen or r.uid is None]
        return Page(
            page.url, RowBatch(rows.table, rows.columns, values, rows.links), quarantined, page.paging
        )


# --- filters --------------------------------------------------------------------------------------


def literal(value: str) -> str:
    """A filter value as EM's grammar wants it: quoted (a quote inside doubled) when it holds
    anything but letters, digits, `.`, `_` and `-`; enum values and numbers stay bare, as every
    documented example writes them (em-api.md, "Query service")."""
    if value and all(c.isalnum() or c in "._-" for c in value):
        return value
    return '"' + value.replace('"', '""') + '"'


def _instant(instant: datetime) -> str:
    return f'"{instant:%Y-%m-%dT%H:%M:%SZ}"'  # filters take UTC date-times to the second, quoted


def _floor(instant: datetime) -> datetime:
    return instant.replace(microsecond=0)


def _and(a: str | None, b: str | None) -> str | None:
    """Both filters (`;` is AND; each parenthesised, `,` inside binding looser)."""
    if a is None or b is None:
        return a if b is None else b
    return f"({a});({b})"


def _seam_term(field: str, low: datetime | None, high: datetime | None) -> str | None:
    """`field>="low";field<="high"` with low rounded down and high up to the second (None: open)."""
    parts = []
    if low is not None:
        parts.append(f"{field}>={_instant(_floor(low))}")
    if high is not None:
        parts.append(f"{field}<={_instant(_floor(high) + SECOND)}")
    return ";".join(parts) or None


def _seam_filter(field: str, seams: list[tuple[datetime | None, datetime | None]]) -> str | None:
    """The seams OR-ed (`;` binds tighter than `,`), those that overlap once rounded merged; None
    when one of them is the whole time line."""
    merged: list[tuple[datetime | None, datetime | None]] = []
    for low, high in sorted(
        ((_floor(lo) if lo else None, _floor(hi) + SECOND if hi else None) for lo, hi in seams),
        key=lambda s: (s[0] is not None, s[0] or datetime.min),
    ):
        if merged and (merged[-1][1] is None or (low is not None and low <= merged[-1][1])):
            prev_low, prev_high = merged[-1]
            merged[-1] = (prev_low, None if prev_high is None or high is None else max(prev_high, high))
            continue
        merged.append((low, high))
    terms = []
    for low, high in merged:
        if low is None and high is None:
            return None
        parts = [f"{field}>={_instant(low)}"] if low is not None else []
        parts += [f"{field}<={_instant(high)}"] if high is not None else []
        terms.append(";".join(parts))
    return ",".join(terms)


def _window(entity_type: EntityType, instant: datetime) -> str:
    """Entities created at or after `instant`; for sessions also older ones that ended at or after
    it or are not finished (any State but the final one)."""
    at = _instant(instant)
    if entity_type.final_state is None:
        return f"{entity_type.window}>={at}"
    return f"({entity_type.window}>={at},EndTime>={at},State!={literal(entity_type.final_state)})"


@dataclass(frozen=True)
class Window:
    """One query of an incremental read: its filter (None: everything), and where each backup server
    it names is read from (a server read whole: None), or one instant for all servers."""

    filter: str | None
    starts: Starts | datetime | None

    @property
    def overlaps(self) -> bool:
        """The window starts after the beginning for some server: it holds rows already loaded."""
        if isinstance(self.starts, dict):
            return any(start is not None for start in self.starts.values())
        return self.starts is not None


def windows(entity_type: EntityType, starts: Starts | datetime | None) -> list[Window]:
    """The queries of an incremental read of `entity_type`.

    `starts` None: everything, one query without a filter. A datetime: one window for all backup
    servers. A dict: one window per backup server, `(BackupServerUid=="a";<window from ta>),…` (`;`
    binds tighter than `,`), a server without a start read whole; as many servers per query as fit
    in FILTER_CHARS. EM collects each backup server on its own schedule, so a server that was
    unreachable delivers its sessions hours late with their original creation times (em-api.md,
    "Collection lag per backup server"): one window per server loses none of them.
    """
    if entity_type.window is None or starts is None or (isinstance(starts, dict) and not starts):
        return [Window(None, None)]
    if isinstance(starts, datetime):
        return [Window(_window(entity_type, starts), starts)]
    out: list[Window] = []
    current, names = "", dict[str, datetime | None]()
    for server, start in sorted(starts.items()):
        term = (
            f"BackupServerUid=={literal(server)}"
            if start is None
            else f"(BackupServerUid=={literal(server)};{_window(entity_type, start)})"
        )
        if current and len(current) + 1 + len(term) > FILTER_CHARS:
            out.append(Window(current, names))
            current, names = "", dict[str, datetime | None]()
        current = f"{current},{term}" if current else term
        names[server] = start
    out.append(Window(current, names))
    return out


def window_filters(entity_type: EntityType, starts: Starts | datetime | None) -> list[str | None]:
    """The filters of `windows(entity_type, starts)`, one query each."""
    return [w.filter for w in windows(entity_type, starts)]


def uid_filters(name: str, uids: Iterable[str]) -> Iterator[str]:
    """`name=="urn:…",name=="urn:…",…` filters (`,` is OR), UIDS_PER_QUERY terms each."""
    for chunk in batched(uids, UIDS_PER_QUERY):
        yield ",".join(f"{name}=={literal(uid)}" for uid in chunk)


def parent_filters(entity_type: EntityType, parents: Iterable[str]) -> Iterator[str]:
    """Filters that list the entities of `entity_type` whose parent is one of `parents` (the type's
    `by_parent` declaration), UIDS_PER_QUERY parents a query."""
    assert entity_type.by_parent is not None
    return uid_filters(entity_type.by_parent.filter, parents)


def server_filter(server: str) -> str:
    return f"BackupServerUid=={literal(server)}"


def time_filter(entity_type: EntityType, since: datetime | None, until: datetime | None) -> str | None:
    """Entities of `entity_type` created in [since, until) (whole seconds; None: open)."""
    parts = [f"{entity_type.window}>={_instant(since)}"] if since is not None else []
    parts += [f"{entity_type.window}<{_instant(until)}"] if until is not None else []
    return ";".join(parts) or None


def all_of(*filters: str | None) -> str | None:
    """Every filter given (AND), None when none is."""
    out: str | None = None
    for f in filters:
        out = _and(out, f)
    return out


# --- parents by link ------------------------------------------------------------------------------


def fetch_parent(client: EMClient, link: Link, entity_type: EntityType) -> Entity | QuarantineRecord | None:
    """The parent a link names, as an Entity; None when EM cannot give it (404, another origin).

    An `Up` link usually points at the reference form; its `Alternate` link leads to the entity.
    Raises AccessDenied when the account's EM role may not read it (403), for the caller to record
    the parent from the link as for a 404 and to say which role reads it.
    """
    try:
        root = client.document(link.href)
        if root.get("Type") not in entity_type.types:
            alt = next(
                (ln for ln in parse.links(root) if ln.rel == "Alternate" and ln.type in entity_type.types),
                None,
            )
            if alt is None:
                return None
            root = client.document(alt.href)
    except (NotFound, ForeignLink):
        return None
    entities, quarantined = transform.read(root, entity_type, link.href)
    if quarantined:
        return quarantined[0]
    return entities[0] if entities else None
