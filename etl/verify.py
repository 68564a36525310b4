"""`veeam-etl verify`: does the warehouse hold what Enterprise Manager holds?

For every backup server and incremental entity type, EM's count over a window (a `pageSize=1`
References query answers it in `PagesCount`) is compared with the warehouse's count of the same
window. The window ends where the last succeeded run started (what EM created later is not
expected yet). `repair` reloads exactly the (type, backup server) windows that differ, through the
ordinary pipeline. A few requests per server and type: meant for a weekly schedule.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, func, select

from . import crawl, db, parse, pipeline, registry, schema
from .client import EMClient
from .errors import SourceError
from .registry import EntityType

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Count:
    """One (entity type, backup server) window: what EM lists and what the warehouse holds."""

    type_name: str
    server_uid: str
    server_name: str | None
    em: int
    warehouse: int

    @property
    def differs(self) -> bool:
        return self.em != self.warehouse


@dataclass
class Verification:
    source: str
    since: datetime
    until: datetime
    counts: list[Count]
    requests: int
    repaired: pipeline.Summary | None = None

    @property
    def differences(self) -> list[Count]:
        return [c for c in self.counts if c.differs]


def _until(eng: Engine, source: str, now: datetime) -> datetime:
    """Where the last succeeded run of `source` started (now when there is none)."""
    runs = schema.etl_runs
    with eng.connect() as conn:
        started = conn.scalar(
            select(func.max(runs.c.started_at)).where(runs.c.source == source, runs.c.status == "succeeded")
        )
    if isinstance(started, str):  # SQLite aggregates lose the column type
        started = datetime.fromisoformat(started)
    return schema.UTCDateTime().process_result_value(started, None) if started else now


def _warehouse_counts(
    eng: Engine, t: EntityType, source: str, since: datetime, until: datetime
) -> dict[str, int]:
    table = schema.table(t.table)
    assert t.time_column is not None
    at = table.c[t.time_column]
    where = [table.c.source == source, at >= since, at < until]
    if "placeholder" in table.c:
        where.append(table.c.placeholder.is_(False))
    if "deleted_at" in table.c:
        where.append(table.c.deleted_at.is_(None))
    query = (
        select(table.c.backup_server_uid, func.count())
        .where(and_(*where))
        .group_by(table.c.backup_server_uid)
    )
    with eng.connect() as conn:
        return {server: n for server, n in conn.execute(query) if server is not None}


def _em_count(client: EMClient, t: EntityType, server: str, since: datetime, until: datetime) -> int:
    """EM's count of `t` created in [since, until) on `server`: PagesCount of a one-per-page query."""
    at = f"{since:%Y-%m-%dT%H:%M:%SZ}", f"{until:%Y-%m-%dT%H:%M:%SZ}"
    flt = f'BackupServerUid=={crawl.literal(server)};{t.window}>="{at[0]}";{t.window}<"{at[1]}"'
    url = client.query_url(t.name, filter=flt, page_size=1, format="References")
    root = client.document(url)
    if parse.local(root) != "QueryResult":
        raise SourceError(f"count query answered <{parse.local(root)}>, expected a <QueryResult>", url)
    pages = parse.paging(root, url).pages
    if pages is None:
        raise SourceError("count query answered a QueryResult without PagingInfo PagesCount", url)
    return pages


def servers_of(client: EMClient) -> dict[str, str | None]:
    """{backup server uid: name} that EM lists (References format, one query)."""
    url = client.query_url("BackupServer", page_size=1000, format="References")
    root = client.document(url)
    return {uid: el.get("Name") for el in root.iter(parse.q(root, "Ref")) if (uid := el.get("UID"))}


def verify(
    eng: Engine,
    url: str,
    user: str,
    password: str,
    *,
    verify: bool | str = True,
    days: float = 7.0,
    repair: bool = False,
    options: pipeline.Options | None = None,
    transport=None,
) -> Verification:
    """Compare EM's and the warehouse's counts per backup server and incremental type over the last
    `days` (up to the last succeeded run); with `repair`, reload the windows that differ. Raises a
    VeeamEtlError (SourceError, LockHeld from the repair run, ConfigError)."""
    opts = options or pipeline.Options()
    source = opts.source or pipeline.source_name(url)
    db.ensure_current(eng)
    now = schema.now_utc()
    until = _until(eng, source, now)
    since = until - timedelta(days=days)
    counts: list[Count] = []
    client = EMClient(
        url,
        user,
        password,
        verify=verify,
        timeout=opts.timeout,
        retry=opts.retry,
        transport=transport,
        concurrency=opts.concurrency,
    )
    with client:
        servers = servers_of(client)
        for t in registry.incremental():
            held = _warehouse_counts(eng, t, source, since, until)
            for server in sorted(set(servers) | set(held)):
                em = _em_count(client, t, server, since, until)
                counts.append(Count(t.name, server, servers.get(server), em, held.get(server, 0)))
    result = Verification(source, since, until, counts, client.requests)
    if repair and result.differences:
        windows: dict[str, dict[str, datetime]] = {}
        for c in result.differences:
            windows.setdefault(c.type_name, {})[c.server_uid] = since
        log.info("reloading %d windows that differ", len(result.differences))
        result.repaired = pipeline.run(
            eng,
            url,
            user,
            password,
            verify=verify,
            options=replace(opts, windows=windows),
            transport=transport,
        )
    return result


def render(result: Verification) -> str:
    """The comparison as a terminal table: every window that differs, then one line of totals."""
    lines = [
        f"verify {result.source}: sessions and points created {result.since:%Y-%m-%d %H:%M}Z .. "
        f"{result.until:%Y-%m-%d %H:%M}Z, {len(result.counts)} windows, {result.requests} requests"
    ]
    differing = result.differences
    if differing:
        lines.append(f"  {'type':<20}{'backup server':<36}{'EM':>10}{'warehouse':>11}{'missing':>9}")
        for c in differing:
            server = (c.server_name or c.server_uid)[:34]
            lines.append(f"  {c.type_name:<20}{server:<36}{c.em:>10}{c.warehouse:>11}{c.em - c.warehouse:>9}")
    lines.append(
        f"  {len(differing)} of {len(result.counts)} windows differ"
        + ("; run again with --repair to reload them" if differing and result.repaired is None else "")
    )
    return "\n".join(lines)
