"""etl.crawl (the Fetcher) and etl.filters: paging by PagesCount or by Next links, UID filters, parents
through Alternate links."""

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from test_client import NS, FakeEM, fetcher

from etl import crawl, filters, parse, plan, registry, transform
from etl.errors import AccessDenied, SourceError, UnexpectedDocument
from etl.workers import ProcessPool


def _page(uids, page, pages=None, next_href=None):
    info = f' PagesCount="{pages}"' if pages else ""
    nxt = f'<Link Rel="Next" Href="{next_href}"/>' if next_href else ""
    body = "".join(
        f'<BackupServer Type="BackupServer" UID="urn:veeam:BackupServer:{u}" Href="/api/backupServers/{u}?format=Entity"/>'
        for u in uids
    )
    return (
        f"<QueryResult {NS}><Entities><BackupServers>{body}</BackupServers></Entities>"
        f'<PagingInfo PageNum="{page}"{info}><Links>{nxt}</Links></PagingInfo></QueryResult>'
    ).encode()


class QueryEM(FakeEM):
    """Serves /api/query pages keyed by the `page` parameter; a References query, the UIDs of them all
    (the atomic list a multi-page inventory answer is cross-checked against)."""

    def __init__(self, pages):
        super().__init__()
        self.pages = pages

    def __call__(self, request):
        if (
            request.url.path == "/api/query"
            and request.headers.get("X-RestSvcSessionId") == f"tok{self.tokens}"
        ):
            self.seen.append(request)
            if request.url.params.get("format") == "References":
                uids = re.findall(r'UID="([^"]+)"', b"".join(self.pages.values()).decode())
                refs = "".join(f'<Ref UID="{u}" Type="Reference"/>' for u in uids)
                body = f'<QueryResult {NS}><Refs>{refs}</Refs><PagingInfo PageNum="1" PagesCount="1"/></QueryResult>'
                return httpx.Response(200, content=body.encode())
            return httpx.Response(200, content=self.pages[request.url.params.get("page", "1")])
        return super().__call__(request)


def test_pages_by_count_in_order_with_prefetch():
    em = QueryEM({str(k): _page([f"{k}a", f"{k}b"], k, pages=5) for k in range(1, 6)})
    with fetcher(em, ahead=3) as f:
        got = [uid for p in f.pages(registry.BACKUP_SERVER) for uid in p.rows.column("uid")]
    assert got == [f"urn:veeam:BackupServer:{k}{x}" for k in range(1, 6) for x in "ab"]
    queries = [r for r in em.seen if r.url.path == "/api/query" and r.url.params["format"] == "Entities"]
    assert len(queries) == 5 and all(r.url.params["pageSize"] == "500" for r in queries)
    # a multi-page inventory answer is checked against one atomic uid list (nothing was missing)
    refs = [r for r in em.seen if r.url.params.get("format") == "References"]
    assert len(refs) == 1 and refs[0].url.params["pageSize"] == str(crawl.REFS_PAGE_SIZE)


def _job_page(k, pages):
    jobs = "".join(
        f'<Job Type="Job" UID="urn:veeam:Job:{k}{x}" Name="j"><JobType>Backup</JobType>'
        f"<JobInfo><BackupJobInfo><Includes>{'<ObjectInJob><Name>vm</Name></ObjectInJob>' * 20}"
        f"</Includes></BackupJobInfo></JobInfo></Job>"
        for x in "ab"
    )
    return (
        f"<QueryResult {NS}><Entities><Jobs>{jobs}</Jobs></Entities>"
        f'<PagingInfo PageNum="{k}" PagesCount="{pages}"/></QueryResult>'
    ).encode()


def test_jobs_are_asked_at_most_a_hundred_a_page_whatever_the_page_size():
    for configured, asked in ((500, "100"), (40, "40")):
        em = QueryEM({str(k): _job_page(k, 3) for k in range(1, 4)})
        with fetcher(em, page_size=configured, ahead=2) as f:
            rows = [row for p in f.pages(registry.JOB) for row in p.rows.values]
        assert len(rows) == 6
        queries = [r for r in em.seen if r.url.path == "/api/query" and r.url.params["format"] == "Entities"]
        assert [r.url.params["pageSize"] for r in queries] == [asked] * 3
        assert [r.url.params["page"] for r in queries] == ["1", "2", "3"]


def test_pages_by_next_links_when_no_count_and_no_loops():
    em = QueryEM(
        {
            "1": _page(["a"], 1, next_href="/api/query?type=BackupServer&amp;page=2"),
            "2": _page(["b"], 2, next_href="/api/query?type=BackupServer&amp;page=2"),
        }
    )  # links to itself
    with fetcher(em, ahead=2) as f:
        got = [uid for p in f.pages(registry.BACKUP_SERVER) for uid in p.rows.column("uid")]
    assert got == ["urn:veeam:BackupServer:a", "urn:veeam:BackupServer:b"]


def test_unreadable_entity_becomes_a_reject_not_a_row():
    body = (
        f'<QueryResult {NS}><Entities><BackupServers><BackupServer Type="BackupServer" UID="urn:veeam:BackupServer:1"/>'
        f'<BackupServer Type="BackupServer" UID="urn:veeam:BackupServer:2" Href="/api/backupServers/2"><Port>many</Port>'
        f"</BackupServer></BackupServers></Entities></QueryResult>"
    ).encode()
    read, rejects = transform.read(parse.document(body, "u"), registry.BACKUP_SERVER, "u")
    assert [e.row["uid"] for e in read] == ["urn:veeam:BackupServer:1"]
    assert (
        rejects[0].href == "/api/backupServers/2" and "many" in rejects[0].error and "<" in rejects[0].excerpt
    )


def test_uid_filters_chunk_and_quote():
    uids = [f'urn:veeam:X:{i}"' for i in range(85)]
    chunks = list(filters.one_of("UID", uids))
    assert len(chunks) == 3 and chunks[0].count(",") == filters.UIDS_PER_QUERY - 1
    assert chunks[0].startswith('UID=="urn:veeam:X:0"""')


def test_literals_are_bare_for_enums_and_quoted_where_the_grammar_needs_it():
    assert filters.literal("Stopped") == "Stopped" and filters.literal("Working") == "Working"
    assert filters.literal("vbr01.lab.local") == "vbr01.lab.local"
    assert filters.literal("urn:veeam:Job:1") == '"urn:veeam:Job:1"'
    assert filters.literal("Backup Job 1") == '"Backup Job 1"'
    assert filters.literal('say "hi"') == '"say ""hi"""'


def window_filters(entity_type, begin):
    return [w.filter for w in plan.windows(entity_type, begin)]


def test_per_server_windows_share_queries_and_a_new_server_is_read_whole():
    session = registry.TYPES["BackupJobSession"]
    at = datetime(2025, 8, 1, 6, 30, tzinfo=UTC)
    assert window_filters(session, None) == [None]
    (one,) = window_filters(session, {"urn:a": at, "urn:new": None})
    # `;` (AND) binds tighter than `,` (OR): one term per server, the new one without a window
    assert one == (
        '(BackupServerUid=="urn:a";(CreationTime>="2025-08-01T06:30:00Z",'
        'EndTime>="2025-08-01T06:30:00Z",State!=Stopped)),BackupServerUid=="urn:new"'
    )
    many = window_filters(session, {f"urn:veeam:BackupServer:{i:04}": at for i in range(200)})
    assert len(many) > 1 and all(len(f) <= plan.FILTER_CHARS for f in many)
    assert sum(f.count("BackupServerUid==") for f in many) == 200
    point = registry.TYPES["VmRestorePoint"]
    assert window_filters(point, at) == [f'{point.time_filter}>="2025-08-01T06:30:00Z"']


def test_fetch_parent_follows_alternate_and_404_gives_none():
    ref = (
        f'<EntityRef {NS} Type="BackupServerReference" UID="urn:veeam:BackupServer:7" Href="/api/backupServers/7">'
        f'<Links><Link Rel="Alternate" Type="BackupServer" Href="/api/backupServers/7?format=Entity"/></Links>'
        f"</EntityRef>"
    ).encode()
    ent = (
        f'<BackupServer {NS} Type="BackupServer" UID="urn:veeam:BackupServer:7" Name="vbr07" Href="/api/backupServers/7?format=Entity">'
        f"<Port>9392</Port></BackupServer>"
    ).encode()
    em = FakeEM(script={"/api/backupServers/7": [(200, ref, {}), (200, ent, {})]})
    link = parse.Link("Up", "BackupServerReference", "/api/backupServers/7", "vbr07")
    with fetcher(em) as f:
        got = f.parent(link, registry.BACKUP_SERVER)
        assert got.row["name"] == "vbr07" and got.row["port"] == 9392
        assert f.parent(link._replace(href="/api/backupServers/8"), registry.BACKUP_SERVER) is None


def test_long_queries_are_read_in_worker_processes_and_short_ones_here(monkeypatch):
    n = crawl.WORKER_PAGES + 1
    em = QueryEM({str(k): _page([f"{k}a"], k, pages=n) for k in range(1, n + 1)})
    started: list[ProcessPool] = []
    submitted = []

    class Counting(ProcessPool):
        def __init__(self, processes):
            super().__init__(processes)
            started.append(self)

        def submit(self, fn, /, *args, **kwargs):
            submitted.append(args[2])
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(crawl, "ProcessPool", Counting)
    with fetcher(em, worker_processes=1, ahead=2) as f:
        got = [uid for p in f.pages(registry.BACKUP_SERVER) for uid in p.rows.column("uid")]
        assert got == [f"urn:veeam:BackupServer:{k}a" for k in range(1, n + 1)]
        # page 1 is read here (it tells the page count), the rest in the worker
        assert len(started) == 1 and len(submitted) == n - 1 and "page=1&" not in "".join(submitted)
    assert all(w.proc.poll() == 0 for w in started[0]._workers)  # the workers ended when their input closed
    short = QueryEM({"1": _page(["x"], 1, pages=2), "2": _page(["y"], 2, pages=2)})
    with fetcher(short, worker_processes=1, ahead=2) as f:
        assert len(list(f.pages(registry.BACKUP_SERVER))) == 2
    assert len(started) == 1 and len(submitted) == n - 1  # two pages: read in this process, no worker started


def test_prefetch_keeps_at_most_ahead_pages_in_flight():
    in_flight, peak = [0], [0]
    lock = threading.Lock()

    def slow(url):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.01)
        with lock:
            in_flight[0] -= 1
        return url

    with ThreadPoolExecutor(8) as pool:
        assert list(crawl._in_order(pool, slow, [str(i) for i in range(30)], ahead=3)) == [
            str(i) for i in range(30)
        ]
    assert peak[0] <= 3


class AnswerEM(FakeEM):
    """Answers every /api/query with one body, whatever its parameters (a count's one page)."""

    def __init__(self, body):
        super().__init__()
        self.body = body

    def __call__(self, request):
        if (
            request.url.path == "/api/query"
            and request.headers.get("X-RestSvcSessionId") == f"tok{self.tokens}"
        ):
            self.seen.append(request)
            return httpx.Response(200, content=self.body)
        return super().__call__(request)


def _refs(uids, pages=None, refs=True):
    info = f' PagesCount="{pages}"' if pages is not None else ""
    body = "".join(
        f'<Ref Type="BackupReference" UID="urn:veeam:Backup:{u}" Href="/api/backups/{u}"/>' for u in uids
    )
    box = f"<Refs>{body}</Refs>" if refs else ""
    return f'<QueryResult {NS}>{box}<PagingInfo PageNum="1" PageSize="1"{info}/></QueryResult>'.encode()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_refs(["a"], pages=7), 7),  # one row on the page: PagesCount rows at one a page
        (_refs([], pages=1), 0),  # an empty list: no row, whatever PagesCount says
        (_refs([], pages=0), 0),
        (_refs([], pages=1, refs=False), 0),  # no list at all (EM leaves null lists out)
        (_refs([]), 0),
    ],
)
def test_count_reads_the_rows_on_the_page_never_pages_count_alone(body, expected):
    em = AnswerEM(body)
    with fetcher(em) as f:
        assert f.count(registry.BACKUP) == expected
    (asked,) = [r for r in em.seen if r.url.path == "/api/query"]
    assert asked.url.params["pageSize"] == "1" and asked.url.params["format"] == "References"
    assert asked.url.params["type"] == "Backup"


def test_count_refuses_what_is_not_a_count():
    menu = f'<QuerySvc {NS} Type="QueryService" Href="/api/querySvc"><Links/></QuerySvc>'.encode()
    for body, error in ((menu, UnexpectedDocument), (_refs(["a"]), SourceError)):
        with fetcher(AnswerEM(body)) as f, pytest.raises(error):
            f.count(registry.BACKUP)
    denied = f'<Error {NS} Message="Access denied" StatusCode="403"/>'.encode()
    em = FakeEM(script={"/api/query": [(403, denied, {})]})
    with fetcher(em) as f, pytest.raises(AccessDenied, match="Access denied"):
        f.count(registry.JOB)
    assert f.retries == 0  # a 403 is an answer, never retried


_SAMPLES = Path(__file__).resolve().parents[1] / "payloads" / "em-samples"


@pytest.mark.parametrize(
    ("sample", "pages", "expected"),
    [  # one recorded task on a page of one: PagesCount is EM's count, the row its oldest
        (
            "query-task-inprogress-result-success.xml",
            37,
            (37, datetime(2020, 12, 10, 15, 6, 21, 363000, UTC)),
        ),
        ("query-empty-entities.xml", None, (0, None)),  # PagesCount 0, no list
        ("query-empty-list.xml", None, (0, None)),  # an empty list on "page 1 of 1"
    ],
)
def test_oldest_is_ems_count_and_its_first_row_in_the_types_sort(sample, pages, expected):
    body = (_SAMPLES / sample).read_bytes()
    if pages is not None:
        body = re.sub(rb'PagesCount="\d+"', f'PagesCount="{pages}"'.encode(), body)
    em = AnswerEM(body)
    with fetcher(em) as f:
        assert f.oldest(registry.BACKUP_TASK_SESSION, 'CreationTime<"2026-01-01T00:00:00Z"') == expected
    (asked,) = [r for r in em.seen if r.url.path == "/api/query"]
    params = asked.url.params
    assert (params["pageSize"], params["format"], params["sortAsc"]) == ("1", "Entities", "CreationTime")


def test_oldest_reads_on_past_an_unreadable_oldest_row_and_gives_no_bound_when_none_reads():
    good = (_SAMPLES / "query-task-inprogress-result-success.xml").read_bytes()
    good = re.sub(rb'PagesCount="\d+"', b'PagesCount="37"', good)
    bad = good.replace(b"<CreationTimeUTC>2020-12-10", b"<CreationTimeUTC>2020-02-30")
    later = good.replace(b"<CreationTimeUTC>2020-12-10", b"<CreationTimeUTC>2020-12-11")
    flt = 'CreationTime<"2026-01-01T00:00:00Z"'
    em = FakeEM(script={"/api/query": [(200, bad, {}), (200, later, {})]})
    with fetcher(em) as f:  # the count from page 1, the bound from the first row that reads
        assert f.oldest(registry.BACKUP_TASK_SESSION, flt) == (
            37,
            datetime(2020, 12, 11, 15, 6, 21, 363000, UTC),
        )
    em = FakeEM(script={"/api/query": [(200, bad, {})] * 3})
    with fetcher(em) as f:
        assert f.oldest(registry.BACKUP_TASK_SESSION, flt, tries=3) == (37, None)
    assert [r.url.params["page"] for r in em.seen if r.url.path == "/api/query"] == ["1", "2", "3"]
