"""What to ask Enterprise Manager for: query pages per type, UID batches, and parents by link.

Pages are fetched on a small thread pool a few pages ahead of the loader and handed back in order;
long queries are parsed and transformed in reader processes (etl.reader), short ones on the
fetching thread.
Knows the EM dialect (types, filters, links), not the warehouse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from datetime import datetime
from typing import NamedTuple

from . import parse
from .client import EMClient
from .errors import ForeignLink, NotFound
from .parse import Link
from .reader import Readers, Reject, read, read_page
from .transform import Entity, Rows

# Query order: parents before children, so that most parents are in the warehouse before a child needs them.
TYPES = ["BackupServer", "ReplicaJobSession", "VmReplicaPoint", "ReplicaTaskSession"]
SESSION_TYPES = ["ReplicaJobSession", "VmReplicaPoint", "ReplicaTaskSession"]  # have CreationTime
SORT = {name: "CreationTime" for name in SESSION_TYPES}  # stable paging while EM keeps adding sessions
READER_PAGES = 8  # a query longer than this is transformed in reader processes (start-up ~0.1 s)
UIDS_PER_QUERY = 40  # OR-ed UID terms per query: keeps the URL well under common 8 KB limits


class Page(NamedTuple):
    url: str
    rows: Rows
    rejects: list[Reject]
    paging: parse.Paging


def fetch_page(client: EMClient, url: str, type_name: str, readers: Readers | None = None) -> Page:
    """One page, parsed and transformed here or, for long queries, in a reader process (off this
    process's GIL). Either way a body that does not parse is fetched again under the client's budget."""
    read_here_or_there = read_page if readers is None else readers.read_page
    return Page(url, *client.get(url, lambda body, u: read_here_or_there(body, type_name, u)))


def _in_order(
    executor: Executor, fn: Callable[[str], Page], urls: Iterable[str], ahead: int
) -> Iterator[Page]:
    """Run fn over urls on the pool, at most `ahead` in flight, yielding results in order."""
    pending: list[Future] = []
    urls = iter(urls)
    for url in urls:
        pending.append(executor.submit(fn, url))
        if len(pending) >= ahead:
            break
    while pending:
        page = pending.pop(0).result()
        nxt = next(urls, None)
        if nxt is not None:
            pending.append(executor.submit(fn, nxt))
        yield page


def pages(
    client: EMClient,
    executor: Executor,
    type_name: str,
    filter: str | None = None,
    ahead: int = 4,
    readers: Callable[[], Readers | None] | None = None,
) -> Iterator[Page]:
    """Every page of a query: page 1, then the rest in parallel when EM tells PagesCount, else by Next links.

    `readers()` gives reader processes for queries of more than READER_PAGES pages (None: read here).
    """
    sort = SORT.get(type_name)
    first = fetch_page(client, client.query_url(type_name, filter=filter, sort_asc=sort), type_name)
    yield first
    count = first.paging.pages
    if count is not None and count > 1:
        pool = readers() if readers is not None and count > READER_PAGES else None
        urls = (
            client.query_url(type_name, filter=filter, sort_asc=sort, page=k) for k in range(2, count + 1)
        )
        yield from _in_order(executor, lambda u: fetch_page(client, u, type_name, pool), urls, ahead)
    elif count is None:
        page, seen = first, {first.url}
        while page.paging.next_href and page.rows.values:
            url = client.resolve(page.paging.next_href)
            if url in seen:
                break  # a server that links a page to itself would loop forever
            seen.add(url)
            page = fetch_page(client, url, type_name)
            yield page


FINAL_STATE = {"ReplicaJobSession": "Stopped", "ReplicaTaskSession": "Completed"}


def _instant(instant: datetime) -> str:
    return f'"{instant:%Y-%m-%dT%H:%M:%SZ}"'  # filters take UTC date-times, quoted


def window_filter(type_name: str, instant: datetime | None) -> str | None:
    """What an incremental run asks for: sessions created at or after `instant`; for job and task
    sessions also older ones that ended at or after it or are still running (None: everything)."""
    if instant is None:
        return None
    at = _instant(instant)
    if type_name not in FINAL_STATE:
        return f"CreationTime>={at}"
    return f'CreationTime>={at},EndTime>={at},State!="{FINAL_STATE[type_name]}"'


def uid_filters(name: str, uids: list[str]) -> Iterator[str]:
    """`name=="a",name=="b",…` filters (`,` is OR) in chunks, quotes doubled as the grammar wants."""
    for i in range(0, len(uids), UIDS_PER_QUERY):
        yield ",".join(
            f'{name}=="{uid.replace(chr(34), chr(34) * 2)}"' for uid in uids[i : i + UIDS_PER_QUERY]
        )


def fetch_parent(client: EMClient, link: Link, type_name: str) -> Entity | Reject | None:
    """The parent a link names, as an Entity; None when EM cannot give it (404, another origin).

    An `Up` link usually points at the reference form; its `Alternate` link leads to the entity.
    """
    try:
        root = client.get(link.href)
        if parse.local(root) != type_name:
            alt = next(
                (ln for ln in parse.links(root) if ln.rel == "Alternate" and ln.type == type_name), None
            )
            if alt is None:
                return None
            root = client.get(alt.href)
    except (NotFound, ForeignLink):
        return None
    entities, rejects = read(root, type_name, link.href)
    if rejects:
        return rejects[0]
    return entities[0] if entities else None
