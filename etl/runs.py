"""Bookkeeping of scheduled loads in the warehouse (etl_* tables, so that several hosts and EMs can
share one): the run record and its typed `Summary`, the one-run-at-a-time lock, watermarks,
quarantine, undocumented values, the last sweep. Knows no HTTP.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from . import chunks, registry
from .errors import LockHeld
from .schema import (
    IN_LIST,
    UTCDateTime,
    etl_locks,
    etl_quarantine,
    etl_runs,
    etl_sweeps,
    etl_undocumented_values,
    etl_watermarks,
    now_utc,
)

if TYPE_CHECKING:
    from .completeness import Verification

log = logging.getLogger(__name__)

HOST = socket.gethostname()
STALE_AFTER = timedelta(minutes=30)


def holder_gone(lock: Mapping) -> bool:
    """Whether the holder of an etl_locks row ran on this host and its process no longer runs."""
    return lock["host"] == HOST and not process_alive(lock["pid"])


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this host is running (one of another account counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_lock(eng: Engine, source: str, stale_after: timedelta = STALE_AFTER) -> None:
    """Take the (warehouse, source) lock or raise LockHeld.

    One row per source in etl_locks. A second run finds the row and raises LockHeld (exit 75), unless
    the holder is stale: on the same host and its process is gone, or its heartbeat (refreshed at
    every commit) is older than `stale_after`. A stale lock is taken over and its run marked failed."""
    now = now_utc()
    mine = {
        "source": source,
        "run_id": None,
        "host": HOST,
        "pid": os.getpid(),
        "acquired_at": now,
        "heartbeat_at": now,
    }
    try:
        with eng.begin() as conn:
            conn.execute(insert(etl_locks).values(**mine))
        return
    except IntegrityError:
        pass
    with eng.begin() as conn:
        held = conn.execute(select(etl_locks).where(etl_locks.c.source == source)).mappings().first()
    if held is None:  # released between our insert and select: try once more
        return acquire_lock(eng, source, stale_after)
    gone = holder_gone(held)
    if not gone and now - held["heartbeat_at"] <= stale_after:
        raise LockHeld(
            f"another run holds the lock for {source} (run {held['run_id']}, pid {held['pid']} on {held['host']}, "
            f"since {held['acquired_at']:%Y-%m-%d %H:%M:%S}Z)"
        )
    with eng.begin() as conn:  # compare-and-swap: only one contender replaces the stale holder
        taken = conn.execute(
            update(etl_locks)
            .where(
                and_(
                    etl_locks.c.source == source,
                    etl_locks.c.pid == held["pid"],
                    etl_locks.c.host == held["host"],
                    etl_locks.c.heartbeat_at == held["heartbeat_at"],
                )
            )
            .values(**mine)
        ).rowcount
        if taken != 1:
            raise LockHeld(f"another run took over the stale lock for {source} first")
        if held["run_id"] is not None:
            conn.execute(
                update(etl_runs)
                .where(and_(etl_runs.c.id == held["run_id"], etl_runs.c.status == "running"))
                .values(
                    status="failed", finished_at=now, error="abandoned: the process ended without finishing"
                )
            )
    log.warning(
        "took over the stale lock for %s: pid %s on %s (run %s, last heartbeat %s) %s; its run is recorded "
        "failed (abandoned)",
        source,
        held["pid"],
        held["host"],
        held["run_id"] if held["run_id"] is not None else "not started",
        f"{held['heartbeat_at']:%Y-%m-%d %H:%M:%S}Z",
        "is gone" if gone else "stopped its heartbeat",
    )


def heartbeat(conn, source: str, run_id: int) -> None:
    conn.execute(
        update(etl_locks).where(etl_locks.c.source == source).values(run_id=run_id, heartbeat_at=now_utc())
    )


def record_progress(conn, summary: Summary, pending: Mapping[tuple[str, str], int]) -> None:
    """Write into the run's etl_runs row the rows it has committed so far: the summary's counts and
    `pending`, the (table, "inserted"/"updated") counts of the transaction `conn` is in, which commits
    with them. A run killed without a chance to write its summary (SIGKILL, a power cut) is then
    recorded with the rows it did load, not none."""
    tables = {table: dict(counts) for table, counts in summary.tables.items()}
    for (table, what), n in pending.items():
        tables.setdefault(table, {"inserted": 0, "updated": 0})[what] += n
    conn.execute(
        update(etl_runs)
        .where(etl_runs.c.id == summary.run_id)
        .values(
            rows_inserted=sum(c["inserted"] for c in tables.values()),
            rows_updated=sum(c["updated"] for c in tables.values()),
            counts=json.dumps(tables, sort_keys=True),
        )
    )


def release_lock(eng: Engine, source: str) -> None:
    with eng.begin() as conn:
        conn.execute(
            delete(etl_locks).where(
                and_(etl_locks.c.source == source, etl_locks.c.pid == os.getpid(), etl_locks.c.host == HOST)
            )
        )


class Requests(Protocol):
    """What asked EM in a run, counted (etl.crawl.Fetcher)."""

    @property
    def requests(self) -> int: ...

    @property
    def retries(self) -> int: ...

    @property
    def foreign_links(self) -> int: ...


@dataclass
class Summary:
    """What one run did: its etl_runs row as it goes. Counts are of committed work only.

    Every etl_runs column a run fills is the field or property of the same name (`record()`), but
    `counts`, which holds `tables` as JSON."""

    run_id: int
    source: str
    mode: str  # full | incremental | since | repair
    status: str = "running"  # running | succeeded | failed
    # table -> {"inserted": rows, "updated": rows}
    tables: dict[str, dict[str, int]] = field(
        default_factory=lambda: {t.table: {"inserted": 0, "updated": 0} for t in registry.TYPES.values()}
    )
    parents_fetched: int = 0  # parents fetched by following a child's link
    parents_from_links: int = 0  # parents EM could not give, recorded from what the child's link says
    quarantined: int = 0
    new_values: int = 0  # enum values EM sent that its documentation does not list (stored as sent)
    # columns the loader filled itself (etl.derive): "table.column" -> rows filled in this run
    worked_out: dict[str, int] = field(default_factory=dict)
    # retention sweep: table -> {"deleted": rows EM no longer lists, "back": rows listed again}
    swept: dict[str, dict[str, int]] = field(default_factory=dict)
    sweep_requests: int = 0  # of `requests`: those of the retention sweep
    # query types EM refused to this account (HTTP 403), skipped: type -> the EM role that reads it
    refused: dict[str, str] = field(default_factory=dict)
    # the completeness check, when the run made one (etl.completeness): what it compared, found, reloaded
    verification: Verification | None = None
    requests: int = 0
    retries: int = 0
    foreign_links: int = 0
    duration_s: float = 0.0

    def finish(self, status: str, asked: Requests | None, started: float) -> None:
        """The run ended with `status`, `started` by time.monotonic(); what `asked` EM, counted."""
        self.status = status
        self.duration_s = time.monotonic() - started
        if asked is not None:
            self.requests, self.retries, self.foreign_links = (
                asked.requests,
                asked.retries,
                asked.foreign_links,
            )

    @property
    def rows_inserted(self) -> int:
        return sum(c["inserted"] for c in self.tables.values())

    @property
    def rows_updated(self) -> int:
        return sum(c["updated"] for c in self.tables.values())

    @property
    def written(self) -> int:
        """Rows inserted or updated so far, in every table."""
        return self.rows_inserted + self.rows_updated

    @property
    def verify_compared(self) -> int | None:
        """Counts the completeness check compared (None: the run made none)."""
        return None if self.verification is None else len(self.verification.counts)

    @property
    def verify_differing(self) -> int | None:
        return None if self.verification is None else len(self.verification.differences)

    @property
    def verify_reloaded(self) -> int | None:
        return None if self.verification is None else self.verification.reloaded

    @property
    def verify_requests(self) -> int | None:
        return None if self.verification is None else self.verification.requests

    def record(self) -> dict[str, Any]:
        """The etl_runs columns this summary fills, by name (RECORDED), with `counts` (the JSON of
        `tables`) and `refused` (JSON [{"type", "role"}], NULL when none) as stored."""
        values = {name: getattr(self, name) for name in RECORDED}
        values["counts"] = json.dumps(self.tables, sort_keys=True)
        refused = [{"type": t, "role": role} for t, role in self.refused.items()]
        values["refused"] = json.dumps(refused) if refused else None
        return values


# etl_runs columns that are a Summary field or property of the same name (record(): also counts, refused)
RECORDED = (
    "status",
    "rows_inserted",
    "rows_updated",
    "parents_from_links",
    "requests",
    "retries",
    "quarantined",
    "foreign_links",
    "new_values",
    "sweep_requests",
    "verify_compared",
    "verify_differing",
    "verify_reloaded",
    "verify_requests",
)


def start_run(eng: Engine, source: str, mode: str) -> int:
    """Record a run of `source` that starts now (its counts are the schema's defaults: 0); its id."""
    with eng.begin() as conn:
        run_id = conn.execute(
            insert(etl_runs).values(
                source=source,
                started_at=now_utc(),
                status="running",
                mode=mode,
                host=HOST,
                pid=os.getpid(),
            )
        ).inserted_primary_key[0]  # type: ignore[index]  # an INSERT always has one
        heartbeat(conn, source, run_id)
    return run_id


def finish_run(conn, summary: Summary, error: str | None = None) -> None:
    """Write the summary into its run's etl_runs row, with `error` (cut to 4000 characters) if it failed."""
    conn.execute(
        update(etl_runs)
        .where(etl_runs.c.id == summary.run_id)
        .values(**summary.record(), finished_at=now_utc(), error=error[:4000] if error else None)
    )


Marks = dict[str, dict[str, datetime]]  # entity type -> backup server uid -> newest creation instant


def watermarks(conn, source: str) -> Marks:
    """{entity type: {backup server uid: newest creation instant committed}} of `source`."""
    w = etl_watermarks.c
    marks: Marks = {}
    rows = conn.execute(select(w.entity_type, w.backup_server_uid, w.watermark_utc).where(w.source == source))
    for entity_type, server, mark in rows:
        marks.setdefault(entity_type, {})[server] = mark
    return marks


def advance_watermarks(conn, source: str, run_id: int, marks: Marks) -> None:
    """Move each (entity type, backup server) watermark to the newest creation instant this run
    committed; never back."""
    old = watermarks(conn, source)
    now = now_utc()
    w = etl_watermarks.c
    for entity_type, per_server in marks.items():
        for server, mark in per_server.items():
            before = old.get(entity_type, {}).get(server)
            if before is None:
                conn.execute(
                    insert(etl_watermarks).values(
                        source=source,
                        entity_type=entity_type,
                        backup_server_uid=server,
                        watermark_utc=mark,
                        run_id=run_id,
                        updated_at=now,
                    )
                )
            elif mark > before:
                conn.execute(
                    update(etl_watermarks)
                    .where(
                        and_(w.source == source, w.entity_type == entity_type, w.backup_server_uid == server)
                    )
                    .values(watermark_utc=mark, run_id=run_id, updated_at=now)
                )


def quarantine(
    conn, source: str, run_id: int, entity_type: str, href: str, uid: str | None, error: str, excerpt: str
) -> None:
    """Record an entity whose fields could not be read (one row per source and href, latest error wins)."""
    conn.execute(
        delete(etl_quarantine).where(and_(etl_quarantine.c.source == source, etl_quarantine.c.href == href))
    )
    conn.execute(
        insert(etl_quarantine).values(
            source=source,
            href=href,
            entity_type=entity_type,
            uid=uid,
            error=error[:2000],
            excerpt=excerpt[:2000],
            run_id=run_id,
            quarantined_at=now_utc(),
        )
    )


def undocumented_values(conn) -> set[tuple[str, str, str]]:
    """(entity type, column, value) of every undocumented enum value the warehouse has recorded."""
    v = etl_undocumented_values.c
    return {(t, c, x) for t, c, x in conn.execute(select(v.entity_type, v.column_name, v.value))}


def record_undocumented(
    conn, source: str, run_id: int, at: datetime, values: list[tuple[str, str, str]]
) -> list[tuple[str, str, str]]:
    """Record undocumented enum values (entity type, column, value) not recorded yet; returns those
    this call recorded. A value another run recorded meanwhile (an estate loading several EMs in
    parallel) is left as it is: `INSERT … ON CONFLICT DO NOTHING`, on SQLite and PostgreSQL alike."""
    from sqlalchemy.dialects import postgresql, sqlite

    upsert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    recorded = []
    for entity_type, column, value in sorted(set(values)):
        done = conn.execute(
            upsert(etl_undocumented_values)
            .values(
                entity_type=entity_type,
                column_name=column,
                value=value,
                source=source,
                run_id=run_id,
                first_seen_at=at,
            )
            .on_conflict_do_nothing()
            .returning(etl_undocumented_values.c.value)  # a row only when this call inserted it
        )
        if done.first() is not None:
            recorded.append((entity_type, column, value))
    return recorded


def values_of(conn, table, column: str, uids: list[str]) -> set[str]:
    """The distinct non-NULL values of `column` in the rows of `table` with the given uids."""
    found: set[str] = set()
    for chunk in chunks(uids, IN_LIST):
        found.update(conn.scalars(select(table.c[column]).where(table.c.uid.in_(chunk))))
    found.discard(None)
    return found


def unfinished(conn, source: str, table, final_state: str) -> list[str]:
    """UIDs of sessions of `source` whose last load saw a State other than `final_state` (any
    other state, documented or not, is unfinished; em-api.md "Values are open sets")."""
    state = table.c.state
    query = select(table.c.uid).where(
        and_(table.c.source == source, or_(state.is_(None), state != final_state))
    )
    if "placeholder" in table.c:
        query = query.where(table.c.placeholder.is_(False))
    return list(conn.scalars(query))


def last_sweep(conn, source: str) -> datetime | None:
    """When the retention sweep of `source` last ran (None: never)."""
    return conn.scalar(select(etl_sweeps.c.swept_at).where(etl_sweeps.c.source == source))


def last_verification(conn, source: str) -> datetime | None:
    """When the last succeeded run of `source` that checked completeness started (None: never)."""
    started = conn.scalar(
        select(func.max(etl_runs.c.started_at)).where(
            etl_runs.c.source == source,
            etl_runs.c.status == "succeeded",
            etl_runs.c.verify_compared.is_not(None),
        )
    )
    if isinstance(started, str):  # SQLite aggregates lose the column type
        started = UTCDateTime().process_result_value(datetime.fromisoformat(started), None)
    return started


def record_sweep(conn, source: str, run_id: int, at: datetime) -> None:
    conn.execute(delete(etl_sweeps).where(etl_sweeps.c.source == source))
    conn.execute(insert(etl_sweeps).values(source=source, swept_at=at, run_id=run_id))
