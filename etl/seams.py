"""The seams between the pages of one query read by creation time, asked again: what keeps the one
paging loop (etl.crawl) complete while EM inserts and deletes rows between pages. Part of that loop,
in its own module for its size: asks EM only through the Fetcher, and knows the warehouse not at all."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from . import filters
from .filters import SECOND, Seam
from .registry import EntityType
from .transform import Page, TableRows

if TYPE_CHECKING:
    from .crawl import Fetcher

log = logging.getLogger(__name__)

SEAMS_PER_QUERY = 40  # seams between pages asked again in one query
SEAM_FILTER_BYTES = 6000  # a seam query's filter as sent (percent-encoded): the URL stays under 8 KB
SLICE_TRIES = 3  # readings of one second that holds more rows than a page, until it matches its count


class Seams:
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
        fetcher: Fetcher,
        executor: Executor | None,
        entity_type: EntityType,
        filter: str | None,
        count: int | None,
    ):
        assert entity_type.time_filter is not None and entity_type.time_column is not None
        self.fetcher, self.executor, self.type, self.filter = fetcher, executor, entity_type, filter
        self.field, self.column = entity_type.time_filter, entity_type.time_column
        self.count = count  # pages EM told on page 1 (None: paging by Next links)
        self._lock = threading.RLock()  # without an executor, seams are read under it (as pages are placed)
        self._spans: dict[int, tuple[datetime, datetime] | None] = {}  # read, not yet placed in order
        self._next = 1  # the first page not placed yet
        self._started = False  # a page with rows was placed
        self._last: datetime | None = None  # the last instant of the last page with rows placed
        self._todo: list[Seam] = []  # seams not asked yet
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
            low, high = filters.floor(span[0]) + SECOND, filters.floor(span[1])
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

    def _chunk(self, seams: list[Seam]) -> tuple[list[Seam], list[Seam]]:
        """As many seams as fit one query (SEAMS_PER_QUERY, SEAM_FILTER_BYTES with the query's filter)."""
        room = SEAM_FILTER_BYTES - (len(quote(self.filter, safe="")) + 10 if self.filter else 0)
        taken: list[Seam] = []
        for seam in seams[:SEAMS_PER_QUERY]:
            room -= len(quote(filters.seam_term(self.field, *seam) or "", safe="")) + 3
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

    def _read(self, seams: list[Seam]) -> list[Page]:
        """One seam query, its rows not read already; a seam answer longer than a page is read on by
        key (`time >= the last second read`, ties read again and dropped by uid)."""
        base = filters.both(self.filter, filters.seams(self.field, seams))
        # a seam holds the rows at its two edges (a few): room for all of them on one page
        size = max(self.type.page_size(self.fetcher.client.page_size), 4 * len(seams))
        seen: set[str] = set()
        out: list[Page] = []
        lower: datetime | None = None
        while True:
            flt = base if lower is None else filters.both(base, f"{self.field}>={filters.instant(lower)}")
            page = self.fetcher.page(self.type, flt, size=size)
            out.append(self._new(page, seen))
            if not page.has_more:
                return out
            times = [t for t in page.rows.column(self.column) if t is not None]
            if not times:
                return out
            last = filters.floor(max(times))
            if lower is not None and last <= lower:  # one second holds more rows than a page
                out += self._second(base, lower, seen)
                lower += SECOND
            else:
                lower = last

    def _second(self, base: str | None, second: datetime, seen: set[str]) -> list[Page]:
        """Every row of one second that holds more rows than a page: its own slice read by offset,
        read again (SLICE_TRIES at most) until what was read covers the slice's count."""
        at, after = filters.instant(second), filters.instant(second + SECOND)
        flt = filters.both(base, f"{self.field}>={at};{self.field}<{after}")
        out: list[Page] = []
        for _ in range(SLICE_TRIES):
            read: set[str] = set()
            for page in self.fetcher.offsets(self.type, flt):  # plain offsets, one after the other
                read.update(page.rows.column("uid"))
                out.append(self._new(page, seen))
            expected = self.fetcher.count(self.type, flt)
            if len(read) >= expected:
                return out
        log.warning(
            "%s: the second %s changed while it was read %d times; the verification checks it again",
            self.type.name,
            at,
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
            page.url, TableRows(rows.table, rows.columns, values, rows.links), quarantined, page.paging
        )
