"""What to ask Enterprise Manager for: query pages per entity type, UID batches, and parents by link.

`pages()` yields the pages of one query in order, page 1 first, then the rest fetched on a small
thread pool a few pages ahead of the loader; long queries are read (parsed and transformed) in
worker processes, short ones on the fetching thread. A body that does not parse is fetched again
under the same retry budget. Knows the EM dialect (query URLs, filters, links), not the warehouse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from datetime import datetime

from . import batched, parse, transform
from .client import EMClient
from .errors import ForeignLink, NotFound, ParseError, SourceError, UnexpectedDocument
from .parse import Link
from .registry import EntityType
from .transform import Entity, Page, QuarantineRecord
from .workers import ProcessPool

WORKER_PAGES = 8  # a query longer than this is read in worker processes (start-up ~0.1 s)
UIDS_PER_QUERY = 40  # OR-ed UID terms per query: keeps the URL well under common 8 KB limits


def fetch_page(
    client: EMClient, url: str, entity_type: EntityType, workers: ProcessPool | None = None
) -> Page:
    """One query page, fetched and read here or, with `workers`, in a worker process (off this
    process's GIL). A body that does not parse is fetched again under the same retry budget.
    Raises what `client.get` and `transform.read_page` raise."""
    budget = client.retry_policy.budget()
    while True:
        body = client.get(url, budget)
        try:
            if workers is None:
                return transform.read_page(body, entity_type, url)
            return workers.submit(transform.read_page, body, entity_type, url).result()
        except ParseError as exc:
            client.retry(budget, exc)


def _in_order(
    executor: Executor, fn: Callable[[str], Page], urls: Iterable[str], ahead: int
) -> Iterator[Page]:
    """Run fn over urls on the pool, at most `ahead` in flight, yielding results in order."""
    pending: list[Future] = []
    todo = iter(urls)
    for url in todo:
        pending.append(executor.submit(fn, url))
        if len(pending) >= ahead:
            break
    while pending:
        page = pending.pop(0).result()
        nxt = next(todo, None)
        if nxt is not None:
            pending.append(executor.submit(fn, nxt))
        yield page


def first_page(
    client: EMClient, executor: Executor, entity_type: EntityType, filter: str | None = None
) -> Future:
    """Page 1 of a query, fetched on `executor` (a Future of a Page): asked for while the query
    before it is still being stored, so that a run of many queries waits no round trip between them."""
    return executor.submit(fetch_page, client, _query_url(client, entity_type, filter), entity_type)


def _query_url(client: EMClient, entity_type: EntityType, filter: str | None, page: int = 1) -> str:
    size = entity_type.page_size(client.page_size)
    return client.query_url(
        entity_type.name, filter=filter, sort_asc=entity_type.sort, page=page, page_size=size
    )


def pages(
    client: EMClient,
    executor: Executor,
    entity_type: EntityType,
    filter: str | None = None,
    ahead: int = 4,
    workers: Callable[[], ProcessPool | None] | None = None,
    first: Future | None = None,
) -> Iterator[Page]:
    """Every page of a query: page 1 (`first` when it was asked for already: see first_page()),
    then the rest in parallel when EM tells PagesCount, else by Next links. `workers()` gives worker
    processes for queries of more than WORKER_PAGES pages (None: read on the fetching threads)."""
    if first is not None:
        page1: Page = first.result()
    else:
        page1 = fetch_page(client, _query_url(client, entity_type, filter), entity_type)
    yield page1
    count = page1.paging.pages
    if count is not None and count > 1:
        pool = workers() if workers is not None and count > WORKER_PAGES else None
        urls = (_query_url(client, entity_type, filter, page=k) for k in range(2, count + 1))
        yield from _in_order(executor, lambda u: fetch_page(client, u, entity_type, pool), urls, ahead)
    elif count is None:
        page, seen = page1, {page1.url}
        while page.paging.next_href and page.rows.values:
            url = client.resolve(page.paging.next_href)
            if url in seen:
                break  # a server that links a page to itself would loop forever
            seen.add(url)
            page = fetch_page(client, url, entity_type)
            yield page


def literal(value: str) -> str:
    """A filter value as EM's grammar wants it: quoted (a quote inside doubled) when it holds
    anything but letters, digits, `.`, `_` and `-`; enum values and numbers stay bare, as every
    documented example writes them (em-api.md, "Query service")."""
    if value and all(c.isalnum() or c in "._-" for c in value):
        return value
    return '"' + value.replace('"', '""') + '"'


FILTER_CHARS = 3000  # characters of filter per query: with the rest, well under common 8 KB URL limits

Starts = dict[str, datetime | None]  # backup server uid -> creation instant to read from (None: all)


def _instant(instant: datetime) -> str:
    return f'"{instant:%Y-%m-%dT%H:%M:%SZ}"'  # filters take UTC date-times, quoted


def _window(entity_type: EntityType, instant: datetime) -> str:
    """Entities created at or after `instant`; for sessions also older ones that ended at or after
    it or are not finished (any State but the final one)."""
    at = _instant(instant)
    if entity_type.final_state is None:
        return f"{entity_type.window}>={at}"
    return f"({entity_type.window}>={at},EndTime>={at},State!={literal(entity_type.final_state)})"


def window_filters(entity_type: EntityType, starts: Starts | datetime | None) -> list[str | None]:
    """The filters of an incremental read of `entity_type`, one query each.

    `starts` None: everything, one query without a filter. A datetime: one window for all backup
    servers. A dict: one window per backup server, `(BackupServerUid=="a";<window from ta>),…` (`;`
    binds tighter than `,`), a server without a start read whole; as many servers per query as fit
    in FILTER_CHARS. EM collects each backup server on its own schedule, so a server that was
    unreachable delivers its sessions hours late with their original creation times (em-api.md,
    "Collection lag per backup server"): one window per server loses none of them.
    """
    if entity_type.window is None or starts is None or (isinstance(starts, dict) and not starts):
        return [None]
    if isinstance(starts, datetime):
        return [_window(entity_type, starts)]
    terms = [
        f"BackupServerUid=={literal(server)}"
        if start is None
        else f"(BackupServerUid=={literal(server)};{_window(entity_type, start)})"
        for server, start in sorted(starts.items())
    ]
    filters: list[str | None] = []
    current = ""
    for term in terms:
        if current and len(current) + 1 + len(term) > FILTER_CHARS:
            filters.append(current)
            current = ""
        current = f"{current},{term}" if current else term
    filters.append(current)
    return filters


def uid_filters(name: str, uids: Iterable[str]) -> Iterator[str]:
    """`name=="urn:…",name=="urn:…",…` filters (`,` is OR), UIDS_PER_QUERY terms each."""
    for chunk in batched(uids, UIDS_PER_QUERY):
        yield ",".join(f"{name}=={literal(uid)}" for uid in chunk)


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


def count(client: EMClient, entity_type: EntityType, filter: str | None = None) -> int:
    """How many entities of `entity_type` EM lists (that match `filter`): one `pageSize=1` query in
    the References format, read from the rows on its page — `PagesCount` when the page holds a row,
    0 when it holds none, whatever `PagesCount` says then (em-api.md, "Empty results": an empty
    result may come without a list, and its `PagesCount` is not documented).

    Raises what `client.document` raises (AccessDenied when the account may not read the type),
    UnexpectedDocument for an answer that is not a QueryResult with PagingInfo, SourceError when a
    page holding a row tells no PagesCount.
    """
    url = client.query_url(entity_type.name, filter=filter, page_size=1, format="References")
    root = client.document(url)
    if parse.local(root) != "QueryResult" or root.find(parse.q(root, "PagingInfo")) is None:
        raise UnexpectedDocument(
            f"a count query for {entity_type.name} answered <{parse.local(root)}>, expected a QueryResult "
            "with PagingInfo",
            url,
        )
    refs = root.find(parse.q(root, "Refs"))
    if refs is not None:
        on_page = len(refs.findall(parse.q(root, "Ref")))
    else:  # no list (an empty result), or entities where references were asked for
        on_page = len(parse.entities(root, entity_type.types))
    if on_page == 0:
        return 0
    pages = parse.paging(root, url).pages
    if pages is None:
        raise SourceError("a count query answered a page holding a row without PagingInfo PagesCount", url)
    return pages
