"""etl.crawl's Fetcher.pages, the one paging loop, against an in-process EM whose result changes between requests.

`ChangingEM` serves `type=RestorePoint` (sorted by `CreationTime`, filters evaluated by the
simulator's own grammar) and `type=Backup` (inventory) from a list of rows it changes before each
query it answers, as a `mutate(em, request_number)` hook says: deletions at the front (retention),
inserts in the middle, appends at the end, ties across a page boundary, a second holding more rows
than a page. Whatever happens, a row that existed throughout is read; and when EM stops changing
before the loop ends, what was read is everything EM lists then plus what it deleted after serving.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from test_client import NS, FakeEM, fetcher

from etl import registry
from etl.simulator.query import parse_date, parse_filter, sort_key

T0 = datetime(2025, 8, 1, tzinfo=UTC)
TICK = 10_000_000  # ticks (100 ns) per second


def instant(ticks: int) -> str:
    """An EM instant with all 7 fractional digits."""
    secs, frac = divmod(ticks, TICK)
    return (T0 + timedelta(seconds=secs)).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:07d}Z"


class Row:
    __slots__ = ("guid", "ticks")

    def __init__(self, guid: str, ticks: int):
        self.guid, self.ticks = guid, ticks

    @property
    def uid(self) -> str:
        return f"urn:veeam:RestorePoint:{self.guid}"


BASE = parse_date(T0.strftime("%Y-%m-%dT%H:%M:%SZ"))


class ChangingEM(FakeEM):
    """EM's query service over `rows`, changed by `mutate(em, n)` before answering query n (1-based)."""

    def __init__(self, rows, mutate=None, kind="RestorePoint"):
        super().__init__()
        self.rows, self.mutate, self.kind = list(rows), mutate, kind
        self.lock = threading.Lock()
        self.queries = 0
        self.served: set[str] = set()
        self.ever: set[str] = {r.uid for r in self.rows}
        self.urls: list[str] = []
        self.params = {
            "uid": ("UID", ("str",), self.uid),
            "creationtime": ("CreationTime", ("date",), lambda o: BASE + o.ticks),
        }

    def uid(self, row) -> str:
        return f"urn:veeam:{self.kind}:{row.guid}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/api/query":
            return super().__call__(request)
        with self.lock:
            self.queries += 1
            self.urls.append(str(request.url))
            if self.mutate is not None:
                self.mutate(self, self.queries)
            self.ever |= {self.uid(r) for r in self.rows}
            p = request.url.params
            pred = parse_filter(p.get("filter", ""), self.params) if p.get("filter") else None
            objs = [r for r in self.rows if pred is None or pred(r)]
            if p.get("sortAsc"):
                objs.sort(key=sort_key(self.params["creationtime"][2], ("date",)))
            size, page = int(p["pageSize"]), int(p["page"])
            count = max(1, -(-len(objs) // size))
            on_page = objs[(page - 1) * size : page * size]
            self.served |= {self.uid(r) for r in on_page}
            body = self.page(on_page, p.get("format") == "References", page, count)
        return httpx.Response(200, content=body)

    def page(self, rows, refs: bool, page: int, count: int) -> bytes:
        kind = self.kind
        if refs:
            items = "".join(f'<Ref Type="{kind}Reference" UID="{self.uid(r)}" Name="r"/>' for r in rows)
            box = f"<Refs>{items}</Refs>" if rows else ""  # EM leaves an empty list out
        else:
            field = (
                "<BackupDateUTC>{}</BackupDateUTC>"
                if kind == "RestorePoint"
                else "<Platform>VMware</Platform>"
            )
            items = "".join(
                f'<{kind} Type="{kind}" UID="{self.uid(r)}" Href="/api/x/{r.guid}" Name="r">'
                + field.format(instant(r.ticks))
                + f"</{kind}>"
                for r in rows
            )
            box = f"<Entities><{kind}s>{items}</{kind}s></Entities>"
        return (
            f'<QueryResult {NS}>{box}<PagingInfo PageNum="{page}" PageSize="1" PagesCount="{count}"/></QueryResult>'
        ).encode()

    def final(self) -> set[str]:
        return {self.uid(r) for r in self.rows}


def rows(n: int, start: int = 0, step: int = 7 * TICK + 1234567, prefix: str = "r") -> list[Row]:
    """`n` rows a few seconds apart, with 7-digit fractions."""
    return [Row(f"{prefix}{i:05d}", start + i * step) for i in range(n)]


def read(em: ChangingEM, entity_type=registry.RESTORE_POINT, page_size=10, parallel=False, filter=None):
    """What the paging loop reads, its pages one after the other (`parallel`: 3 ahead on 3 threads)."""
    uids: list[str] = []
    with fetcher(em, page_size=page_size, ahead=3) as f:
        for page in f.pages(entity_type, filter, parallel=parallel):
            uids += page.rows.column("uid")
    return uids


def settled(em: ChangingEM, got: list[str]) -> None:
    """EM stopped changing before the loop's last request: everything it lists is read, and nothing
    read is made up (what was read and is gone was deleted after EM served it)."""
    assert em.final() <= set(got), sorted(em.final() - set(got))[:5]
    assert set(got) <= em.served


def test_static_result_costs_one_seam_query_per_forty_seams_and_reads_nothing_twice():
    em = ChangingEM(rows(95))
    got = read(em)
    assert sorted(got) == sorted(em.final()) and len(got) == len(set(got))
    pages = [u for u in em.urls if "page=" in u]
    assert len(em.urls) == 10 + 1  # 10 pages, then one query for the 11 seams (none of them slid)
    assert "CreationTime%3E%3D" in em.urls[-1] and "%3B" in em.urls[-1]  # seams: >= and <=, AND-ed
    assert pages


def test_deletions_at_the_front_between_pages_lose_nothing_that_is_still_listed():
    def retention(em, n):
        if n > 1:
            del em.rows[:4]  # EM removes its oldest rows after every job run

    em = ChangingEM(rows(120), retention)
    got = read(em)
    settled(em, got)


def test_inserts_in_the_middle_and_appends_at_the_end_are_read():
    def collect(em, n):
        if n == 3:  # late-collected rows past what has been read (page 3 starts at row 20)
            em.rows += [Row(f"late{i}", 60 * 7 * TICK + i * TICK) for i in range(15)]
        if n == 5:  # new rows at the end
            em.rows += [Row(f"new{i}", 10_000 * TICK + i) for i in range(12)]

    em = ChangingEM(rows(100), collect)
    got = read(em)
    settled(em, got)
    assert {f"urn:veeam:RestorePoint:late{i}" for i in range(15)} <= set(got)


def test_ties_across_a_page_boundary_are_read_again_not_skipped():
    same = [Row(f"tie{i:02d}", 50 * TICK + i) for i in range(14)]  # 14 rows within one second

    def shrink(em, n):
        if n == 2:
            del em.rows[:3]  # the tied rows slide towards page 1, already read

    em = ChangingEM(rows(6) + same + rows(30, start=60 * TICK, prefix="s"), shrink)
    got = read(em)
    settled(em, got)
    assert {r.uid for r in same} <= set(got)


def test_a_second_holding_more_rows_than_a_page_is_read_as_its_own_slice_checked_against_its_count():
    burst = [Row(f"b{i:03d}", 300 * TICK + i * 1000) for i in range(150)]  # 150 rows in one second

    def shrink(em, n):
        if n in (2, 3, 4):
            del em.rows[:5]

    em = ChangingEM(rows(40) + burst + rows(20, start=400 * TICK, prefix="z"), shrink)
    got = read(em)
    settled(em, got)
    # the seam around the burst was read by key, then as the slice of its one second, then counted
    assert any("pageSize=1&" in u and "%3C%22" in u for u in em.urls)


@pytest.mark.parametrize("seed", range(12))
def test_a_row_that_existed_throughout_is_never_missed_whatever_em_does_between_requests(seed):
    rng = random.Random(seed)
    initial = rows(150, step=3 * TICK + 777)
    made = [0]

    def chaos(em, n):
        for _ in range(rng.randrange(4)):
            what = rng.random()
            if what < 0.4 and em.rows:
                del em.rows[: rng.randrange(1, 6)]  # retention at the front
            elif what < 0.6 and em.rows:
                del em.rows[rng.randrange(len(em.rows))]  # one row anywhere
            else:
                made[0] += 1
                ticks = rng.randrange(0, 600 * TICK)
                em.rows.append(Row(f"x{made[0]:04d}", ticks))  # anywhere in time, even long ago

    em = ChangingEM(initial, chaos)
    throughout = {r.uid for r in initial}
    got = read(em, parallel=True, page_size=rng.choice((7, 10, 25)))
    # rows never deleted were listed from the first request to the last
    throughout &= em.final()
    assert throughout <= set(got), sorted(throughout - set(got))[:5]
    assert set(got) <= em.served


def test_multi_page_inventory_is_cross_checked_against_one_atomic_uid_list():
    backups = [Row(f"k{i:03d}", 0) for i in range(30)]

    def shrink(em, n):
        if n == 3:  # a backup at the front goes: the rest slide one place towards page 1
            del em.rows[0]

    em = ChangingEM(backups, shrink, kind="Backup")
    got = read(em, entity_type=registry.BACKUP, page_size=10)
    assert set(got) >= em.final()
    refs = [u for u in em.urls if "format=References" in u]
    lookups = [u for u in em.urls if "UID%3D%3D" in u]
    assert len(refs) == 1 and "pageSize=10000" in refs[0]
    assert len(lookups) == 1  # the one backup that slid past page 2 while it was read


def test_a_one_page_answer_is_complete_and_costs_nothing_more():
    em = ChangingEM(rows(8))
    assert sorted(read(em)) == sorted(em.final()) and em.queries == 1


def test_counts_come_from_the_rows_on_the_page_not_from_pagescount_alone():
    em = ChangingEM([])  # answers PagesCount 1 with no row for an empty result (em-api.md "Empty results")
    with fetcher(em) as f:
        assert f.count(registry.RESTORE_POINT) == 0
        em.rows = rows(17)
        assert f.count(registry.RESTORE_POINT) == 17


def test_uid_lists_read_references_pages_without_refs_as_empty():
    em = ChangingEM([])
    with fetcher(em) as f:
        assert [u for chunk in f.uids(registry.RESTORE_POINT) for u in chunk] == []
        em.rows = rows(3)
        assert len([u for chunk in f.uids(registry.RESTORE_POINT) for u in chunk]) == 3
