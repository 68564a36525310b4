"""Completeness, checked: Enterprise Manager's counts against the warehouse's, drilling down only
where totals differ (`compare`), each differing bucket handed to the run to read again. Asks EM
through the Fetcher; imports nothing of the pipeline. Why equal totals are trustworthy, and where
that stops: docs/completeness.md."""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine, Table, and_, func, select
from sqlalchemy.sql.elements import ColumnElement

from . import chunks, filters, registry, schema
from .errors import AccessDenied
from .registry import EntityType

if TYPE_CHECKING:
    from .crawl import Fetcher
    from .runs import Summary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bucket:
    """What one count covers: the rows of a type, on one backup server (None: all), created in
    [since, until) (None: any time), of some backups (empty: any). A `history` bucket holds the rows
    created before a check's window: counted in EM, it is bounded below by EM's oldest row (`since`),
    so the sessions the warehouse keeps after EM purged them are left out of the warehouse's count;
    there only EM listing more than the warehouse is a difference (see `Count.differs`)."""

    type_name: str
    server_uid: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    backups: tuple[str, ...] = ()
    history: bool = False

    @property
    def entity_type(self) -> EntityType:
        return registry.TYPES[self.type_name]

    def filters(self) -> list[str | None]:
        """EM query filters that list exactly this bucket's rows (one query each)."""
        t = self.entity_type
        if self.backups:
            return list(filters.children_of(t, self.backups))
        return [
            filters.all_of(
                filters.server(self.server_uid) if self.server_uid else None,
                filters.created(t, self.since, self.until) if self.since or self.until else None,
            )
        ]

    def where(self, table: Table) -> ColumnElement[bool]:
        """The same rows in the warehouse's table."""
        t = self.entity_type
        clauses = []
        if self.server_uid is not None:
            clauses.append(table.c.backup_server_uid == self.server_uid)
        if self.backups:
            assert t.by_parent is not None
            clauses.append(table.c[t.by_parent.column].in_(self.backups))
        if t.time_column is not None:
            if self.since is not None:
                clauses.append(table.c[t.time_column] >= self.since)
            if self.until is not None:
                clauses.append(table.c[t.time_column] < self.until)
        return and_(*clauses) if clauses else table.c.uid.is_not(None)

    @property
    def label(self) -> str:
        if self.backups:
            return self.backups[0] if len(self.backups) == 1 else f"{len(self.backups)} backups"
        if self.history and self.until is not None:
            start = f", from {self.since:%Y-%m-%d %H:%M} (EM's oldest)" if self.since is not None else ""
            return f"before {self.until:%Y-%m-%d %H:%M}{start}"
        if self.since is None:
            return "all time"
        return f"{self.since:%Y-%m-%d %H:%M} .. {self.until:%Y-%m-%d %H:%M}"


@dataclass(frozen=True)
class Count:
    """One bucket: what EM lists and what the warehouse holds (live rows, not placeholders)."""

    bucket: Bucket
    em: int
    warehouse: int
    unbounded: bool = False  # a history bucket whose oldest rows in EM could not be read

    @property
    def differs(self) -> bool:
        """The counts disagree. In a history bucket, EM lists more rows than the warehouse holds: a
        row EM removed out of age order (a point retired after the sweep) leaves the warehouse long
        there, which is no error. A history bucket EM's oldest row could not bound differs whenever
        EM lists rows in it: the warehouse's count would include the history EM purged, which could
        hide a row it lacks, so it is read again. A row EM lists and the loader quarantined makes a
        bucket differ at every check: read again, it may read now."""
        if self.bucket.history:
            return self.em > 0 if self.unbounded else self.em > self.warehouse
        return self.em != self.warehouse

    @property
    def type_name(self) -> str:
        return self.bucket.type_name

    @property
    def server_uid(self) -> str | None:
        return self.bucket.server_uid


@dataclass
class Verification:
    """What a completeness check compared (`counts`, every level), found (`differences`: the buckets
    read again, or to read) and reloaded (rows written)."""

    source: str
    since: datetime
    until: datetime
    counts: list[Count]
    differences: list[Count]
    requests: int = 0
    reloaded: int = 0
    server_names: dict[str, str | None] = field(default_factory=dict)
    repaired: Summary | None = None


def _days(since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """[since, until) cut at UTC midnights."""
    out, start = [], since
    while start < until:
        midnight = (start.astimezone(UTC) + timedelta(days=1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        end = min(midnight, until)
        out.append((start, end))
        start = end
    return out


def _children(bucket: Bucket, servers: list[str], backups_of: Callable[[str], list[str]]) -> list[Bucket]:
    """The finer buckets that add up to `bucket` (none: it is as fine as it gets)."""
    if bucket.backups:
        if len(bucket.backups) == 1:
            return []
        half = len(bucket.backups) // 2
        return [
            replace(bucket, backups=bucket.backups[:half]),
            replace(bucket, backups=bucket.backups[half:]),
        ]
    if bucket.server_uid is None:
        return [replace(bucket, server_uid=server) for server in servers]
    if bucket.history:  # read again whole: all of the type on that server before the window
        return []
    if bucket.since is not None and bucket.until is not None:
        days = _days(bucket.since, bucket.until)
        return [replace(bucket, since=a, until=b) for a, b in days] if len(days) > 1 else []
    groups = chunks(backups_of(bucket.server_uid), filters.UIDS_PER_QUERY)
    return [replace(bucket, backups=tuple(group)) for group in groups]


def top_buckets(since: datetime, until: datetime, history: bool = False) -> list[Bucket]:
    """Per incremental type over [since, until), and per type listed by backup over all time
    (imported backups bring points weeks older than any window); with `history`, also per other
    incremental type before `since` (a full load: what it read is checked back to EM's oldest row)."""
    by_backup = [t for t in registry.TYPES.values() if t.parent_type == registry.BACKUP.name]
    out = [Bucket(t.name, since=since, until=until) for t in registry.incremental()]
    out += [Bucket(t.name) for t in by_backup]
    if history:
        out += [
            Bucket(t.name, until=since, history=True) for t in registry.incremental() if t not in by_backup
        ]
    return out


def warehouse_count(eng: Engine, bucket: Bucket, source: str) -> int:
    """Live rows of `source` in the bucket: not placeholders, not marked deleted."""
    table = schema.table(bucket.entity_type.table)
    where = [table.c.source == source, bucket.where(table)]
    if "placeholder" in table.c:
        where.append(table.c.placeholder.is_(False))
    if "deleted_at" in table.c:
        where.append(table.c.deleted_at.is_(None))
    with eng.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def backups_of(eng: Engine, source: str) -> Callable[[str], list[str]]:
    """server uid -> the backups the warehouse knows on it (and those its points and files name)."""

    def of(server: str) -> list[str]:
        found: set[str] = set()
        with eng.connect() as conn:
            b = schema.backups
            found.update(
                conn.scalars(select(b.c.uid).where(b.c.source == source, b.c.backup_server_uid == server))
            )
            for t in registry.TYPES.values():
                if t.parent_type == registry.BACKUP.name and t.by_parent is not None:
                    table = schema.table(t.table)
                    column = table.c[t.by_parent.column]
                    found.update(
                        conn.scalars(
                            select(column)
                            .where(table.c.source == source, table.c.backup_server_uid == server)
                            .distinct()
                        )
                    )
        return sorted(uid for uid in found if uid)  # a point may name no backup

    return of


def compare(
    eng: Engine,
    fetcher: Fetcher,
    source: str,
    since: datetime,
    until: datetime,
    servers: Iterable[str],
    reload: Callable[[Count], int] | None = None,
    refused: Callable[[EntityType, AccessDenied], None] | None = None,
    skip: Container[str] = (),
    history: bool = False,
) -> Verification:
    """Count `top_buckets(since, until, history)` in EM (`Fetcher.count`, a level's counts in parallel)
    and in the warehouse; where they differ, count the finer buckets (per backup server of
    `servers` and those the warehouse holds rows of, then per day or group of backups). A bucket
    that differs is read again (`reload(count)` returns the rows it wrote) when it has no finer
    buckets or none of them differs (EM changed between the counts, or holds rows of a backup the
    warehouse does not know). Types named in `skip` are not compared; a type EM refuses to the
    account (HTTP 403) is passed to `refused` and left out (raised without it). Raises what
    `Fetcher.count` raises."""
    listed = set(servers)
    with eng.connect() as conn:
        bs = schema.backup_servers
        names = dict(conn.execute(select(bs.c.uid, bs.c.name).where(bs.c.source == source)).all())
    every = sorted(listed | {s for s in names if s is not None})
    of = backups_of(eng, source)
    counts: list[Count] = []
    leaves: list[Count] = []
    level: list[tuple[Bucket, Count | None]] = [
        (b, None) for b in top_buckets(since, until, history) if b.entity_type.name not in skip
    ]

    def em_count(item: tuple[Bucket, Count | None]) -> tuple[int, Bucket, bool] | AccessDenied:
        try:
            return _em_count(fetcher, item[0])
        except AccessDenied as exc:
            if refused is None:
                raise
            return exc

    while level:
        ems = list(fetcher.map(em_count, level))
        explained: set[int] = set()
        parents: dict[int, Count] = {}
        nxt: list[tuple[Bucket, Count | None]] = []
        for (asked, parent), answer in zip(level, ems, strict=True):
            if isinstance(answer, AccessDenied):
                assert refused is not None
                refused(asked.entity_type, answer)
                continue
            em, bucket, unbounded = answer
            c = Count(bucket, em, warehouse_count(eng, bucket, source), unbounded)
            counts.append(c)
            if parent is not None:
                parents[id(parent)] = parent
                if c.differs:
                    explained.add(id(parent))
            if not c.differs:
                continue
            finer = _children(bucket, every, of)
            if finer:
                nxt += [(b, c) for b in finer]
            else:
                leaves.append(c)
        leaves += [p for key, p in parents.items() if key not in explained]
        level = nxt
    result = Verification(source, since, until, counts, leaves, server_names=names)
    if reload is not None:
        for c in leaves:
            result.reloaded += reload(c)
    return result


def _em_count(fetcher: Fetcher, bucket: Bucket) -> tuple[int, Bucket, bool]:
    """EM's count of `bucket`, the bucket the warehouse is to count, and whether it is a history
    bucket EM's oldest rows could not bound: a history bucket is bounded below by EM's oldest row
    in it that reads with a time (`Fetcher.oldest`: one request, more when the oldest do not read),
    any other bucket is counted as it is."""
    if bucket.history:
        (flt,) = bucket.filters()
        n, oldest = fetcher.oldest(bucket.entity_type, flt)
        if oldest is None:
            return n, bucket, n > 0
        return n, replace(bucket, since=oldest), False
    return sum(fetcher.count(bucket.entity_type, flt) for flt in bucket.filters()), bucket, False
