"""The Fetcher: one Enterprise Manager as the product asks it, owning the EM client, the threads that
fetch pages ahead of the loader and the worker processes that read long queries, with the one paging
loop every query goes through (stable while EM changes; its seams: etl.seams). Knows the EM dialect
(query URLs, filters, links), never the warehouse: imports nothing of schema, load, runs or derive."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import datetime
from typing import TypeVar

from . import filters, parse, transform
from .client import EMClient
from .errors import AccessDenied, ForeignLink, NotFound, ParseError, SourceError
from .parse import Link
from .registry import EntityType
from .seams import Seams
from .settings import Options
from .transform import Entity, Page, QuarantineRecord
from .workers import ProcessPool

log = logging.getLogger(__name__)

WORKER_PAGES = 8  # a query longer than this is read in worker processes (start-up ~0.1 s)
REFS_PAGE_SIZE = 10_000  # uids per References page: one page is one atomic list (EM documents no maximum)

Done = Callable[[int, Page], None]  # told each page (by number) as soon as it is read
Parent = Entity | QuarantineRecord | AccessDenied | None  # what following one link gave
T = TypeVar("T")
R = TypeVar("R")


class Fetcher:
    """A logged-on conversation with one Enterprise Manager, and everything the product asks it:
    `pages()` (the one paging loop), `first_page()` (a query's start, asked ahead), `offsets()` and
    `uids()` (plain offset pages, uid lists), `count()`, `parent()`/`parents()` (by link), `owners()`
    (which job lists a row) and `map()` (requests of the caller's own, on the Fetcher's threads).

    Built from the EM's URL, the account and `Options` (timeout, page size, retries, concurrency,
    `ahead` threads, worker processes); `verify` is True, False or a CA bundle path, `transport` an
    httpx transport (tests). Use as a context manager: logon on enter; on exit the worker processes
    end, the threads finish and the session is logged off, even when the body raised. Raises
    ConfigError for an unusable URL or CA bundle, and what `EMClient.logon` raises on enter.
    """

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        *,
        verify: bool | str = True,
        options: Options | None = None,
        transport=None,
    ):
        opts = options or Options()
        self.client = EMClient(
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
        # pages fetched or being read ahead of the loader, and the threads that fetch them
        self.ahead = opts.ahead or 2 * opts.concurrency
        self._processes = opts.worker_processes
        self._pool: ThreadPoolExecutor | None = None
        self._workers: ProcessPool | None = None
        self._starting = threading.Lock()

    def __enter__(self) -> Fetcher:
        self.client.__enter__()
        self._pool = ThreadPoolExecutor(self.ahead, thread_name_prefix="em")
        return self

    def __exit__(self, *exc) -> None:
        try:
            try:
                if self._workers is not None:
                    self._workers.shutdown()
            finally:
                if self._pool is not None:
                    self._pool.shutdown(wait=True)
        finally:
            self.client.close()

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The threads requests run on (the Fetcher must have been entered)."""
        assert self._pool is not None, "the Fetcher is used as a context manager"
        return self._pool

    def workers(self) -> ProcessPool | None:
        """Worker processes for long queries, started on first need (None when configured off); from
        any thread (a prefetch asks for them on the thread that read a query's page 1)."""
        with self._starting:
            if self._workers is None and self._processes > 0:
                self._workers = ProcessPool(self._processes)
            return self._workers

    @property
    def requests(self) -> int:
        return self.client.requests

    @property
    def retries(self) -> int:
        return self.client.retries

    @property
    def foreign_links(self) -> int:
        return self.client.foreign_links

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """`fn` over `items` on the Fetcher's threads, results in order. `fn` may ask EM, one request
        after the other (`count`, `uids`, `parent`), but must not wait on these threads itself."""
        return self.pool.map(fn, items)

    # --- one page ---------------------------------------------------------------------------------

    def query_url(
        self,
        entity_type: EntityType,
        filter: str | None = None,
        number: int = 1,
        format: str = "Entities",
        size: int | None = None,
    ) -> str:
        """The URL of page `number` of `type=<entity_type>&filter=<filter>` (the type's sort)."""
        if size is None:
            size = entity_type.page_size(self.client.page_size) if format == "Entities" else REFS_PAGE_SIZE
        sort = entity_type.sort if format == "Entities" else None
        return self.client.query_url(
            entity_type.name, filter=filter, sort_asc=sort, page=number, page_size=size, format=format
        )

    def page(
        self, entity_type: EntityType, filter: str | None = None, number: int = 1, size: int | None = None
    ) -> Page:
        """Page `number` of a query (Entities format), fetched and read here."""
        return self._entities(self.query_url(entity_type, filter, number, size=size), entity_type)

    def _entities(self, url: str, entity_type: EntityType, workers: ProcessPool | None = None) -> Page:
        """One query page (Entities format), fetched and read here or, with `workers`, in a worker
        process (off this process's GIL). A body that does not parse is fetched again under the same
        retry budget. Raises what `client.get` and `transform.read_page` raise."""
        budget = self.client.retry_policy.budget()
        while True:
            body = self.client.get(url, budget)
            try:
                if workers is None:
                    return transform.read_page(body, entity_type, url)
                return workers.submit(transform.read_page, body, entity_type, url).result()
            except ParseError as exc:
                self.client.wait_to_retry(budget, exc)

    def _references(self, url: str, entity_type: EntityType) -> Page:
        """One query page in the References format: its rows are the UIDs as EM gives them. Raises
        what `client.get` and `transform.read_refs` raise."""
        budget = self.client.retry_policy.budget()
        while True:
            body = self.client.get(url, budget)
            try:
                return transform.read_refs(body, entity_type, url)
            except ParseError as exc:
                self.client.wait_to_retry(budget, exc)

    def _fetch(
        self, url: str, entity_type: EntityType, format: str, workers: ProcessPool | None = None
    ) -> Page:
        if format == "Entities":
            return self._entities(url, entity_type, workers)
        return self._references(url, entity_type)

    def first_page(self, entity_type: EntityType, filter: str | None = None) -> Prefetch:
        """Page 1 of a query fetched on the Fetcher's threads, and pages 2.. up to `ahead` as soon as
        it is in (`Prefetch`): asked for while the query before it is still being stored."""
        return Prefetch(self, entity_type, filter)

    # --- the loop ---------------------------------------------------------------------------------

    def pages(
        self,
        entity_type: EntityType,
        filter: str | None = None,
        *,
        first: Prefetch | None = None,
        parallel: bool = True,
    ) -> Iterator[Page]:
        """Every row EM lists for `type=<entity_type>&filter=<filter>`, as query pages, page 1 first
        (`first` when it was asked for already: see first_page()), then the rest by offset `ahead`
        at a time on the Fetcher's threads (`parallel` False: one after the other, here), read in
        worker processes for queries of more than WORKER_PAGES pages.

        EM pages by offset into a result it keeps changing (em-api.md, "EM changes while it is
        read"): a row that moves across a page boundary after that page was read is skipped. A
        one-page answer is one moment's view and complete. For a longer one:

        - types read by creation time (their query sorted by it): the seams between pages are asked
          again (etl.seams), and what they hold that was not read is yielded after the pages;
        - inventory (no time filter): one References page of REFS_PAGE_SIZE uids, asked while the
          pages are read, is an atomic list of what EM holds; what it names and the pages did not
          give is read by `UID==` (UIDS_PER_QUERY OR-ed a query).

        A row that existed throughout is never missed; a row EM adds is read if it lands past what
        was read (a row EM inserts inside a page already read, with an old creation time, is left to
        the completeness check, etl.completeness). Rows may come twice; the loader upserts by uid.
        """
        executor = self.pool if parallel else None
        workers = self.workers if parallel else None
        if first is not None:
            page1 = first.result()
        else:
            page1 = self._entities(self.query_url(entity_type, filter), entity_type)
        if not page1.has_more:
            yield page1
            return
        asked = first.asked() if first is not None else None
        if entity_type.time_filter is not None and entity_type.time_column is not None:
            seams = Seams(self, executor, entity_type, filter, page1.paging.pages)
            try:
                seams.add(1, page1)
                yield page1
                yield from self._rest(
                    executor, entity_type, filter, page1, workers=workers, done=seams.add, asked=asked
                )
                yield from seams.results()
            finally:
                seams.stop()
        else:
            yield from self._inventory(executor, entity_type, filter, page1, workers, asked)

    def offsets(
        self,
        entity_type: EntityType,
        filter: str | None = None,
        format: str = "Entities",
        parallel: bool = False,
    ) -> Iterator[Page]:
        """Page 1 of a query, then pages 2.. by offset and nothing more: no seams, no cross-check
        (uid lists, a slice of one second). What slid between pages is missed: never a proof of
        absence."""
        page1 = self._fetch(self.query_url(entity_type, filter, 1, format), entity_type, format)
        yield page1
        if page1.has_more:
            yield from self._rest(self.pool if parallel else None, entity_type, filter, page1, format)

    def uids(
        self, entity_type: EntityType, filter: str | None = None, *, parallel: bool = False
    ) -> Iterator[list[str]]:
        """The UIDs EM lists of `entity_type` (matching `filter`), a References page (REFS_PAGE_SIZE)
        at a time, as EM gives them. Not a proof of absence: the loader never infers absence from a
        uid list alone (it looks every candidate up by UID first)."""
        for page in self.offsets(entity_type, filter, "References", parallel):
            yield page.rows.column("uid")

    def count(self, entity_type: EntityType, filter: str | None = None) -> int:
        """How many entities EM lists for the query now: a one-per-page References query. The count
        is read from the rows on the page, not from PagesCount alone: a `pageSize=1` query of an
        empty result may report one page holding no row (em-api.md, "Empty results"). Raises
        SourceError when a page with a row tells no PagesCount."""
        url = self.query_url(entity_type, filter, 1, "References", size=1)
        return _listed(self._references(url, entity_type))

    def oldest(
        self, entity_type: EntityType, filter: str | None = None, tries: int = 3
    ) -> tuple[int, datetime | None]:
        """How many entities EM lists for the query now, and the earliest creation time among them
        (`time_column`): page 1 of one entity in the type's sort, oldest first, whose PagesCount is
        the count (read as `count()` reads it). When that row cannot be read or has no time, the
        next page of one, up to `tries` pages; None when none of them gives a time (or the result
        is empty). Raises SourceError when a page with a row tells no PagesCount."""
        assert entity_type.time_column is not None
        count = 0
        for number in range(1, tries + 1):
            url = self.query_url(entity_type, filter, number, size=1)
            page = self._entities(url, entity_type)
            if not page.rows.values and not page.quarantined:
                return count, None
            if number == 1:
                count = _listed(page)
            first = page.rows.column(entity_type.time_column)[:1] if not page.quarantined else [None]
            if first[0] is not None:
                return count, first[0]
        return count, None

    def _inventory(
        self,
        executor: Executor | None,
        entity_type: EntityType,
        filter: str | None,
        page1: Page,
        workers: Callable[[], ProcessPool | None] | None,
        asked: dict[int, Future] | None,
    ) -> Iterator[Page]:
        def listed() -> list[str]:
            return [uid for chunk in self.uids(entity_type, filter) for uid in chunk]

        listing: Future | None = executor.submit(listed) if executor is not None else None
        read: set[str] = set()
        rest = self._rest(executor, entity_type, filter, page1, workers=workers, asked=asked)
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
        for flt in filters.one_of("UID", missing):
            yield from self.pages(entity_type, flt, parallel=executor is not None)

    def _rest(
        self,
        executor: Executor | None,
        entity_type: EntityType,
        filter: str | None,
        page1: Page,
        format: str = "Entities",
        workers: Callable[[], ProcessPool | None] | None = None,
        done: Done | None = None,
        asked: dict[int, Future] | None = None,
    ) -> Iterator[Page]:
        """Pages 2.. of a query by offset: in parallel when EM told PagesCount (read in worker
        processes for queries of more than WORKER_PAGES pages), else one after the other by Next
        links. `asked`: those asked for already (Prefetch)."""
        count = page1.paging.pages
        if count is not None:
            pool = (
                workers() if workers is not None and count > WORKER_PAGES and format == "Entities" else None
            )
            pages = _in_order(
                executor,
                lambda k: self._fetch(
                    self.query_url(entity_type, filter, k, format), entity_type, format, pool
                ),
                range(2, count + 1),
                max(self.ahead, len(asked or ())),
                done,
                dict(asked) if asked else None,
            )
            for k, page in enumerate(pages, start=2):
                yield page
                if not page.rows.values and page.paging.pages is not None and page.paging.pages < k:
                    # past the end EM tells now (page 1's count was wrong, or EM shrank): the pages
                    # after this one are empty too, and what lands past the last row is the last seam's
                    return
            return
        page, seen, k = page1, {page1.url}, 1
        while page.paging.next_href and page.rows.values:
            url = self.client.resolve(page.paging.next_href)
            if url in seen:
                break  # a server that links a page to itself would loop forever
            seen.add(url)
            k += 1
            page = self._fetch(url, entity_type, format)
            if done is not None:
                done(k, page)
            yield page

    # --- lookups ----------------------------------------------------------------------------------

    def parent(self, link: Link, entity_type: EntityType) -> Entity | QuarantineRecord | None:
        """The parent a link names, as an Entity; None when EM cannot give it (404, another origin).

        An `Up` link usually points at the reference form; its `Alternate` link leads to the entity.
        Raises AccessDenied when the account's EM role may not read it (403), for the caller to record
        the parent from the link as for a 404 and to say which role reads it.
        """
        try:
            root = self.client.document(link.href)
            if root.get("Type") not in entity_type.types:
                alt = next(
                    (
                        ln
                        for ln in parse.links(root)
                        if ln.rel == "Alternate" and ln.type in entity_type.types
                    ),
                    None,
                )
                if alt is None:
                    return None
                root = self.client.document(alt.href)
        except (NotFound, ForeignLink):
            return None
        entities, quarantined = transform.read(root, entity_type, link.href)
        if quarantined:
            return quarantined[0]
        return entities[0] if entities else None

    def parents(self, links: list[Link], entity_type: EntityType) -> list[Parent]:
        """`parent()` of each link, in parallel, in order; a refusal (403) as its AccessDenied."""

        def fetch(link: Link) -> Parent:
            try:
                return self.parent(link, entity_type)
            except AccessDenied as exc:  # the account's role may not read it: like a 404
                return exc

        return list(self.pool.map(fetch, links))

    def owners(
        self, entity_type: EntityType, field: str, groups: list[list[str]], wanted: set[str]
    ) -> tuple[dict[str, set[str]], int]:
        """Which one owner lists each of the `wanted` uids of `entity_type`, asking
        `type=<type>&filter=<field>==<owner>,…` (uid lists) for `groups` of owners (up to
        UIDS_PER_QUERY each) in parallel: a group whose answer holds a wanted uid is halved until one
        owner is left, a group that holds none costs one request. `wanted` loses the uids found.
        Returns ({owner: the wanted uids it lists}, queries asked)."""

        def members(group: list[str]) -> list[str]:  # nearly always one page: a job has a backup or two
            flt = ",".join(f"{field}=={filters.literal(owner)}" for owner in group)
            return [uid for chunk in self.uids(entity_type, flt) for uid in chunk]

        found: dict[str, set[str]] = {}
        asked = 0
        while groups and wanted:
            split: list[list[str]] = []
            asked += len(groups)
            for group, uids in zip(groups, self.pool.map(members, groups), strict=True):
                hits = wanted.intersection(uids)
                if not hits:
                    continue
                if len(group) > 1:
                    split += [group[: len(group) // 2], group[len(group) // 2 :]]
                    continue
                wanted.difference_update(hits)
                found.setdefault(group[0], set()).update(hits)
            groups = split
        return found, asked


class Prefetch:
    """The start of a query asked for while the query before it is still being stored: page 1 (a
    Future of a Page) and, as soon as page 1 tells PagesCount, pages 2.. up to `ahead` (`early`), so
    that a run of many queries waits no round trip between them."""

    def __init__(self, fetcher: Fetcher, entity_type: EntityType, filter: str | None):
        self.early: dict[int, Future] = {}
        self._asked = threading.Event()  # set once `early` holds all it will
        executor = fetcher.pool
        self.page1 = executor.submit(fetcher._entities, fetcher.query_url(entity_type, filter), entity_type)

        def ask_on(future: Future) -> None:
            try:
                count = future.result().paging.pages if future.exception() is None else None
                if count is not None and count > 1:
                    pool = fetcher.workers() if count > WORKER_PAGES else None
                    for k in range(2, min(count, fetcher.ahead + 1) + 1):
                        url = fetcher.query_url(entity_type, filter, k)
                        self.early[k] = executor.submit(fetcher._entities, url, entity_type, pool)
            except RuntimeError:  # the run is ending (the pool shut down): nobody will read them
                pass
            finally:
                self._asked.set()

        self.page1.add_done_callback(ask_on)

    def result(self) -> Page:
        """Page 1 (raises what reading it raised)."""
        return self.page1.result()

    def asked(self) -> dict[int, Future]:
        """The pages after page 1 asked for already, by number (once page 1 is in)."""
        self._asked.wait()
        return self.early


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


def _listed(page: Page) -> int:
    """What page 1 of a one-per-page query says EM lists: read from the rows on the page (readable or
    quarantined), not from PagesCount alone, since an empty result may report one page holding no
    row (em-api.md, "Empty results"). Raises SourceError when a page with a row tells no PagesCount."""
    on_page = len(page.rows.values) + len(page.quarantined)
    if on_page == 0:
        return 0
    if page.paging.pages is None:
        raise SourceError("a count query answered without PagingInfo PagesCount", page.url)
    return max(page.paging.pages, on_page)


def _chain(page1: Page, rest: Iterator[Page]) -> Iterator[Page]:
    yield page1
    yield from rest
