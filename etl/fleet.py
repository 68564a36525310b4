"""Many Enterprise Managers into one warehouse: `run_estate` loads each EM of an estate file
(etl.estate) with its own lock, watermarks and run record, at most `parallel` at once, one EM's
failure never stopping the others; `render` is the fleet's summary table, one row per EM.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from . import db, logs, pipeline, schema, stopping
from .errors import ConfigError, Interrupted, LockHeld, VeeamEtlError
from .estate import EM, Credentials, Estate

log = logging.getLogger(__name__)

NOT_STARTED = "not started"


@dataclass
class Outcome:
    """How one EM's load ended. `status`: succeeded, failed, locked (another run holds its lock) or
    not started (a signal stopped the fleet before its turn came).

    `summary` is the run's pipeline.Summary when it succeeded; the counts come from it, or for a
    failed run from its etl_runs record (what it committed before it failed)."""

    name: str
    status: str
    summary: pipeline.Summary | None = None
    error: str | None = None
    duration_s: float = 0.0
    run_id: int | None = None
    rows_inserted: int = 0
    rows_updated: int = 0
    requests: int = 0

    @classmethod
    def of(cls, name: str, summary: pipeline.Summary) -> Outcome:
        return cls(
            name,
            summary.status,
            summary,
            None,
            summary.duration_s,
            summary.run_id,
            sum(c["inserted"] for c in summary.tables.values()),
            sum(c["updated"] for c in summary.tables.values()),
            summary.requests,
        )


@dataclass
class Result:
    """Every EM's outcome in estate order (an EM a signal kept from starting has none), the wall
    time, the parallelism actually used (at most one per EM), and the signal that stopped the fleet."""

    outcomes: list[Outcome]
    duration_s: float
    parallel: int
    interrupted: Interrupted | None = None

    @property
    def exit_code(self) -> int:
        """0 all loaded, 1 any failed, 75 when the only problem is locks held by other runs;
        128 + the signal's number when one stopped the fleet."""
        if self.interrupted is not None:
            return self.interrupted.exit_code
        statuses = {o.status for o in self.outcomes}
        if "failed" in statuses:
            return 1
        if "locked" in statuses:
            return 75
        return 0


def run_one(
    db_url: str,
    em: EM,
    *,
    db_schema: str | None = None,
    overrides: dict | None = None,
    transport=None,
) -> pipeline.Summary:
    """Load one EM of an estate (its own engine, lock, watermarks and run record). Raises the
    VeeamEtlError of `pipeline.run` (ConfigError for a missing secret or CA bundle)."""
    return _load(db_url, db_schema, em, em.connection.open(), overrides, transport)


def _load(db_url, db_schema, em: EM, logon: Credentials, overrides, transport) -> pipeline.Summary:
    eng = db.engine(db_url, db_schema)
    try:
        return pipeline.run(
            eng,
            logon.url,
            logon.user,
            logon.password,
            verify=logon.verify,
            options=em.options(overrides),
            transport=transport,
        )
    finally:
        eng.dispose()


def run_estate(
    db_url: str,
    estate: Estate,
    *,
    db_schema: str | None = None,
    parallel: int | None = None,
    overrides: dict | None = None,
    transport=None,
) -> Result:
    """Load every EM of `estate` into one warehouse, at most `parallel` (default: the file's) at once;
    one at a time on SQLite; `overrides` (keys of etl.estate.OVERRIDE_FLAGS) apply to every EM. Never
    raises for one EM's failure: each ends in an Outcome, logged as it ends. Raises ConfigError or
    MigrationError when the warehouse itself cannot be used (it is brought to the current schema
    once, before any load starts: concurrent first migrations would collide).

    SQLite has one writer and a batch holds the write lock while its pages arrive, so on SQLite the
    EMs load one after another (concurrent writers would wait on each other for up to busy_timeout
    and then fail with "database is locked"); on PostgreSQL they load `parallel` at once.

    Each EM loads in a thread of its own. A signal (SIGINT, SIGTERM: `etl.stopping`) or a
    KeyboardInterrupt in this thread stops the fleet: no EM starts after it, each EM that is loading
    raises Interrupted at its next request (its batch rolled back, its run recorded failed
    "interrupted by SIGTERM", its lock released), and once every thread has ended the Result says
    so in `interrupted` (nothing is left running behind the caller's back).
    """
    started = time.monotonic()
    eng = db.warehouse(db_url, db_schema, mode="write")
    try:
        db.ensure_current(eng)  # once, before the loads: concurrent first migrations would collide
        sqlite = eng.dialect.name == "sqlite"
    finally:
        eng.dispose()
    width = min(len(estate.ems), 1 if sqlite else max(1, parallel or estate.parallel)) or 1
    slots = threading.BoundedSemaphore(width)
    done: queue.Queue[tuple[int, Outcome]] = queue.Queue()

    # secrets are read here, in one thread, before any load starts (logs.secret is not thread-safe
    # against a log line being redacted); a missing one fails its EM only
    logons: list[Credentials | ConfigError] = []
    for em in estate.ems:
        try:
            logons.append(em.connection.open())
        except ConfigError as exc:
            logons.append(exc)

    def work(index: int, em: EM) -> None:
        with slots:
            begun, begun_wall = time.monotonic(), schema.now_utc()
            stop = stopping.requested()
            if stop is not None:  # stopped while this EM waited for its turn: it never starts
                done.put((index, Outcome(em.name, NOT_STARTED, None, f"{stop} before it started")))
                return
            try:
                outcome = _outcome(em, logons[index])
            except Exception as exc:  # a bug must not take the other EMs down with it
                log.exception("em %s: unexpected error", em.name)
                outcome = Outcome(
                    em.name, "failed", None, f"{type(exc).__name__}: {exc}", time.monotonic() - begun
                )
        if outcome.status == "failed":
            _counts_of_failed_run(db_url, db_schema, outcome, begun_wall)
        done.put((index, outcome))

    def _outcome(em: EM, logon: Credentials | ConfigError) -> Outcome:
        """Load one EM; how it ended (a failure of the EM or the warehouse is an Outcome, not raised)."""
        begun = time.monotonic()
        try:
            if isinstance(logon, ConfigError):
                raise logon
            return Outcome.of(em.name, _load(db_url, db_schema, em, logon, overrides, transport))
        except LockHeld as exc:
            return Outcome(em.name, "locked", None, str(exc), time.monotonic() - begun)
        except VeeamEtlError as exc:
            return Outcome(em.name, "failed", None, str(exc) or type(exc).__name__, time.monotonic() - begun)
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            message = f"the warehouse failed: {type(exc).__name__}: {detail[0] if detail else ''}"
            return Outcome(em.name, "failed", None, logs.redact(message), time.monotonic() - begun)
        except KeyboardInterrupt as exc:  # etl.stopping: the run recorded itself and let its lock go
            return Outcome(em.name, "failed", None, str(exc) or "interrupted", time.monotonic() - begun)

    threads = [
        threading.Thread(target=work, args=(i, em), name=f"em:{em.name}", daemon=True)
        for i, em in enumerate(estate.ems)
    ]
    for thread in threads:
        thread.start()
    outcomes: list[Outcome | None] = [None] * len(estate.ems)

    def collect(block: bool) -> bool:
        """Take one ended EM's outcome off the queue; False when none is there (without `block`)."""
        try:
            index, outcome = done.get(timeout=0.5) if block else done.get_nowait()
        except queue.Empty:
            return False
        outcomes[index] = outcome
        # one line per EM as it ends, for long runs watched on a terminal
        log.info("em %s: %s in %.1f s", outcome.name, outcome.status, outcome.duration_s)
        return True

    interrupted: KeyboardInterrupt | None = None
    try:
        while None in outcomes:
            collect(block=True)  # a timeout, so that a signal's handler runs in this thread
    except KeyboardInterrupt as exc:
        interrupted = exc
        if stopping.requested() is None:  # a plain KeyboardInterrupt (no etl handler): stop the others
            stopping.request(getattr(exc, "signum", signal.SIGINT))
        log.warning("%s: stopping every EM's load (a second signal ends the process at once)", exc)
        for thread in threads:
            thread.join()  # each run rolls back its batch, records itself and releases its lock
        while collect(block=False):
            pass
    return Result(
        [o for o in outcomes if o is not None],
        time.monotonic() - started,
        width,
        stopping.requested() if interrupted is not None else None,
    )


def _counts_of_failed_run(db_url: str, db_schema: str | None, outcome: Outcome, since) -> None:
    """Fill a failed EM's run id and counts from its etl_runs record (this process's newest run of
    that source started since `since`), when there is one. Best effort: the warehouse may be what failed."""
    runs = schema.etl_runs
    try:
        eng = db.engine(db_url, db_schema)
        try:
            with eng.connect() as conn:
                row = conn.execute(
                    select(runs.c.id, runs.c.rows_inserted, runs.c.rows_updated, runs.c.requests)
                    .where(
                        runs.c.source == outcome.name,
                        runs.c.pid == os.getpid(),
                        runs.c.started_at >= since,
                    )
                    .order_by(runs.c.id.desc())
                    .limit(1)
                ).first()
        finally:
            eng.dispose()
    except (VeeamEtlError, SQLAlchemyError):
        return
    if row is not None:
        outcome.run_id, outcome.rows_inserted, outcome.rows_updated, outcome.requests = row


def render(result: Result) -> str:
    """The summary table: one row per EM (status, run id, rows, requests, seconds, error) and a total."""
    width = max([len("em"), len("total"), *(len(o.name) for o in result.outcomes)])
    lines = [
        f"{'em':<{width}}  {'status':<12}{'run':>6}{'inserted':>10}{'updated':>10}{'requests':>10}"
        f"{'seconds':>9}  error"
    ]
    for o in result.outcomes:
        error = o.error.splitlines()[0][:300] if o.error else ""
        run = str(o.run_id) if o.run_id is not None else "-"
        lines.append(
            f"{o.name:<{width}}  {o.status:<12}{run:>6}{o.rows_inserted:>10}{o.rows_updated:>10}{o.requests:>10}"
            f"{o.duration_s:>9.1f}  {error}".rstrip()
        )
    statuses = ("succeeded", "failed", "locked", NOT_STARTED)
    counts = {s: sum(o.status == s for o in result.outcomes) for s in statuses}
    total = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "nothing run"
    stopped = f"; {result.interrupted}" if result.interrupted is not None else ""
    lines.append(
        f"{'total':<{width}}  {'':<12}{'':>6}{sum(o.rows_inserted for o in result.outcomes):>10}"
        f"{sum(o.rows_updated for o in result.outcomes):>10}{sum(o.requests for o in result.outcomes):>10}"
        f"{result.duration_s:>9.1f}  {len(result.outcomes)} EMs: {total}; {result.parallel} at a time{stopped}"
    )
    return "\n".join(lines)
