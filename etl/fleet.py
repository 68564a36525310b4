"""Many Enterprise Managers into one warehouse: the estate file, and one load per EM at once.

An estate file is TOML (read with the standard library's tomllib)::

    [defaults]                       # keys shared by every [[em]] (each EM may override them)
    user = 'DOMAIN\\svc-veeam-etl'
    password_env = "VEEAM_EM_PASSWORD"
    ca_bundle = "/etc/veeam-etl/ca.pem"
    page_size = 500

    [[em]]
    name = "em-lon"                  # the `source` of its rows in the warehouse
    url = "https://em-lon.example.com:9398/api"

    [[em]]
    name = "em-nyc"
    url = "https://em-nyc.example.com:9398/api"
    password_file = "/run/secrets/em-nyc"   # relative paths are relative to the estate file
    concurrency = 2

    [schedule]                       # optional; read by orchestrators (etl.orchestration)
    cron = "*/15 * * * *"

A password is never written in the file: `password_env` names an environment variable,
`password_file` a file holding it. Run options go under their `veeam-etl run` flag names with
underscores (see OPTIONS). `load()` validates the whole file before anything runs; a problem is an
`EstateError` (a ConfigError, exit 2) with one line per problem naming the file, the EM and the key.
Secrets and the CA bundle are read when that EM's load starts, so a missing one fails that EM only.

`run_estate()` loads every EM, at most `parallel` at once, each with its own lock, watermarks and
run record (`pipeline.run` with `source=name`); one EM's failure never stops the others. SQLite
has one writer and a batch holds the write lock while its pages arrive, so on SQLite the EMs load
one after another (concurrent writers would wait on each other for up to busy_timeout and then
fail with "database is locked"); on PostgreSQL they load `parallel` at once. A signal stops the
fleet the way it stops one EM (etl.stopping): no EM starts after it, each run in flight records
itself failed and releases its lock, and only then does `run_estate` return.
"""

from __future__ import annotations

import difflib
import logging
import os
import queue
import re
import signal
import threading
import time
import tomllib
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from . import db, logs, pipeline, schema, settings, stopping
from .errors import ConfigError, EstateError, Interrupted, LockHeld, VeeamEtlError
from .settings import SETTINGS

log = logging.getLogger(__name__)

DEFAULT_PARALLEL = 4
NOT_STARTED = "not started"
DEFAULT_CRON = "*/15 * * * *"

# Run options an [[em]] or [defaults] table may set: key -> (type, minimum, maximum), the settings
# of `veeam-etl run` (etl.settings: --page-size is page_size, ...).
OPTIONS: dict[str, tuple[type, float | None, float | None]] = {
    s.name: (s.type, s.low, s.high) for s in SETTINGS
}
CONNECTION_KEYS = (
    "url",
    "user",
    "password_env",
    "password_file",
    "ca_bundle",
    "insecure",
    "allow_cleartext",
)
EM_KEYS = ("name", *CONNECTION_KEYS, *OPTIONS)
DEFAULT_KEYS = tuple(k for k in EM_KEYS if k not in ("name", "url"))
TOP_KEYS = ("defaults", "em", "schedule", "parallel")
SCHEDULE_KEYS = ("cron", "timezone")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# pairs of keys of which one table may give one; the EM's choice replaces the pair from [defaults]
_EXCLUSIVE = (("password_env", "password_file"), ("ca_bundle", "insecure"))


@dataclass(frozen=True)
class EM:
    """One Enterprise Manager of the estate, [defaults] already applied.

    `options` holds the run options the file set (keys of OPTIONS); the rest take
    `pipeline.Options`' defaults. Paths are absolute (relative ones resolved against the file).
    """

    name: str
    url: str
    user: str
    password_env: str | None = None
    password_file: Path | None = None
    ca_bundle: Path | None = None
    insecure: bool = False
    allow_cleartext: bool = False  # plain http:// to a host that is not loopback (a lab; warned)
    options: dict = field(default_factory=dict)

    def password(self) -> str:
        """The EM password from its variable or file, registered for redaction. Raises ConfigError."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if not value:
                raise ConfigError(
                    f"em {self.name!r}: environment variable {self.password_env} (password_env) is not set"
                )
        else:
            try:
                assert self.password_file is not None  # checked when the file was read
                value = self.password_file.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(
                    f"em {self.name!r}: cannot read password_file {self.password_file}: {exc.strerror or exc}"
                ) from None
            if not value:
                raise ConfigError(f"em {self.name!r}: password_file {self.password_file} is empty")
        logs.secret(value)
        logs.public(self.user)  # shown as it is, even when the password equals it
        return value

    def verify(self) -> bool | str:
        """The TLS `verify` argument: False (insecure), the CA bundle's path, or True; warns about an
        insecure or cleartext connection. Raises ConfigError for a CA bundle that is not a PEM file."""
        if settings.cleartext(self.url, allowed=self.allow_cleartext):
            log.warning(
                "em %s: %s is plain HTTP (allow_cleartext = true): the EM password and session token "
                "cross the network unencrypted; use https:// (port 9398)",
                self.name,
                self.url,
            )
        if self.insecure:
            log.warning("em %s: TLS certificate verification is OFF (insecure = true)", self.name)
            return False
        if self.ca_bundle is not None:
            return settings.ca_bundle(str(self.ca_bundle), f"em {self.name!r}: ca_bundle")
        return True

    def pipeline_options(self, overrides: dict | None = None) -> pipeline.Options:
        """`pipeline.Options` for this EM: the file's options, then `overrides` (keys of OPTIONS, or
        `since`), over the defaults; `source` is the EM's name."""
        opts = {**self.options, **(overrides or {})}
        return settings.options(opts, source=self.name, since=opts.get("since"))


@dataclass(frozen=True)
class Estate:
    """A validated estate file: its EMs in file order, the schedule and the default parallelism."""

    path: Path
    ems: tuple[EM, ...]
    cron: str = DEFAULT_CRON
    timezone: str = "UTC"
    parallel: int = DEFAULT_PARALLEL

    def names(self) -> list[str]:
        return [em.name for em in self.ems]

    def select(self, only: Iterable[str]) -> Estate:
        """The EMs named in `only` (all when empty), in file order. Raises ConfigError on an unknown name."""
        wanted = list(dict.fromkeys(only))
        if not wanted:
            return self
        unknown = [n for n in wanted if n not in self.names()]
        if unknown:
            raise ConfigError(
                f"{self.path}: no [[em]] named {', '.join(map(repr, unknown))} (the file has: {', '.join(self.names())})"
            )
        return Estate(
            self.path,
            tuple(em for em in self.ems if em.name in wanted),
            self.cron,
            self.timezone,
            self.parallel,
        )


# ---------------------------------------------------------------------------------------------- parsing


def load(path: str | os.PathLike) -> Estate:
    """Read and validate an estate file. Raises EstateError (exit 2) naming every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EstateError([f"{path}: cannot read the estate file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise EstateError([f"{path}: not UTF-8 text"]) from None
    return parse(text, path)


def parse(text: str, path: str | os.PathLike = "estate.toml") -> Estate:
    """Validate estate-file text; `path` names the file in messages and anchors relative paths."""
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EstateError([f"{path}: not valid TOML: {exc}"]) from None
    problems: list[str] = []

    def problem(where: str, message: str) -> None:
        problems.append(f"{path}: {where}: {message}")

    for key in data:
        if key not in TOP_KEYS:
            problem(f"key {key!r}", _unknown(key, TOP_KEYS))
    base = path.parent
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        problem("key 'defaults'", "must be a table: [defaults]")
        defaults = {}
    checked_defaults = _check_table(defaults, "[defaults]", DEFAULT_KEYS, base, problem)

    ems_raw = data.get("em", [])
    if not isinstance(ems_raw, list) or not all(isinstance(t, dict) for t in ems_raw):
        problem("key 'em'", "must be an array of tables: [[em]]")
        ems_raw = []
    if not ems_raw and not problems:
        problem("[[em]]", "no Enterprise Manager listed (add an [[em]] table with name, url, user)")
    ems: list[EM] = []
    seen: dict[str, int] = {}
    for i, table in enumerate(ems_raw, 1):
        raw_name = table.get("name")
        where = f"em {raw_name!r}" if isinstance(raw_name, str) and raw_name.strip() else f"em #{i}"
        checked = _check_table(table, where, EM_KEYS, base, problem)
        name = checked.get("name")
        if name is None and "name" not in table:
            problem(where, "key 'name': missing (the EM's name in the warehouse, e.g. \"em-lon\")")
        elif name is not None:
            if name in seen:
                problem(where, f"key 'name': duplicate name (also em #{seen[name]})")
            seen.setdefault(name, i)
        merged = dict(checked_defaults)
        for pair in _EXCLUSIVE:  # the EM's own choice of a pair replaces the one [defaults] made
            if any(k in checked for k in pair):
                for k in pair:
                    merged.pop(k, None)
        merged.update(checked)
        for key in ("url", "user"):
            if key not in merged and key not in table and key not in defaults:
                problem(where, f"key {key!r}: missing")
        if (
            "password_env" not in merged
            and "password_file" not in merged
            and not any(k in table or k in defaults for k in ("password_env", "password_file"))
        ):
            problem(where, "no password_env or password_file (here or in [defaults])")
        if "url" in merged:
            try:
                settings.cleartext(
                    merged["url"],
                    "key 'url':",
                    merged.get("allow_cleartext", False),
                    "allow_cleartext = true",
                )
            except ConfigError as exc:
                problem(where, str(exc))
                continue
        if name is None or any(k not in merged for k in ("url", "user")):
            continue
        if "password_env" not in merged and "password_file" not in merged:
            continue
        ems.append(
            EM(
                name=name,
                url=merged["url"],
                user=merged["user"],
                password_env=merged.get("password_env"),
                password_file=merged.get("password_file"),
                ca_bundle=merged.get("ca_bundle"),
                insecure=merged.get("insecure", False),
                allow_cleartext=merged.get("allow_cleartext", False),
                options={k: merged[k] for k in OPTIONS if k in merged},
            )
        )

    cron, timezone = DEFAULT_CRON, "UTC"
    schedule = data.get("schedule", {})
    if not isinstance(schedule, dict):
        problem("key 'schedule'", "must be a table: [schedule]")
        schedule = {}
    for key, value in schedule.items():
        if key not in SCHEDULE_KEYS:
            problem(f"[schedule]: key {key!r}", _unknown(key, SCHEDULE_KEYS))
        elif not isinstance(value, str) or not value.strip():
            problem(f"[schedule]: key {key!r}", "must be a non-empty string")
        elif key == "cron" and len(value.split()) != 5:
            problem("[schedule]: key 'cron'", f"{value!r} is not a five-field cron expression")
        elif key == "cron":
            cron = value
        elif not _is_timezone(value):
            problem(
                "[schedule]: key 'timezone'", f"{value!r} is not an IANA time zone such as 'Europe/London'"
            )
        else:
            timezone = value
    parallel = data.get("parallel", DEFAULT_PARALLEL)
    if type(parallel) is not int or not 1 <= parallel <= 64:
        problem("key 'parallel'", "must be a whole number from 1 to 64")
        parallel = DEFAULT_PARALLEL
    if problems:
        raise EstateError(problems)
    return Estate(path, tuple(ems), cron, timezone, parallel)


def _is_timezone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _unknown(key: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(key.replace("-", "_"), list(allowed), n=1)
    return "unknown key" + (
        f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"
    )


def _check_table(table: dict, where: str, allowed: tuple[str, ...], base: Path, problem) -> dict:
    """The valid keys of one [[em]] or [defaults] table, converted; every bad key reported."""
    out: dict = {}
    for key, value in table.items():
        at = f"key {key!r}"
        if key == "password":
            problem(
                where,
                f"{at}: a password is never written in the estate file; use password_env (the name of an "
                "environment variable) or password_file (a file that holds it)",
            )
        elif key not in allowed:
            if key in EM_KEYS:
                problem(where, f"{at}: belongs in each [[em]] table, not in [defaults]")
            else:
                problem(where, f"{at}: {_unknown(key, allowed)}")
        elif key in OPTIONS:
            kind, low, high = OPTIONS[key]
            if kind is bool:
                ok = isinstance(value, bool)
            elif kind is int:
                ok = type(value) is int
            else:
                ok = type(value) in (int, float)
            if not ok:
                problem(where, f"{at}: must be {_kind(kind)}, not {value!r}")
            elif kind is not bool and (
                (low is not None and value < low) or (high is not None and value > high)
            ):
                span = f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
                problem(where, f"{at}: must be {span}, not {value!r}")
            else:
                out[key] = float(value) if kind is float else value
        elif key in ("insecure", "allow_cleartext"):
            if not isinstance(value, bool):
                problem(where, f"{at}: must be true or false")
            else:
                out[key] = value
        elif not isinstance(value, str) or not value.strip():
            problem(where, f"{at}: must be a non-empty string")
        elif key == "url":
            try:
                out[key] = settings.em_url(value, at)
            except ConfigError as exc:
                problem(where, str(exc))
        elif key == "password_env":
            if not _ENV_NAME.match(value):  # never echo it: it may be a password put in the wrong key
                problem(where, f"{at}: must be the NAME of an environment variable (letters, digits, _)")
            else:
                out[key] = value
        elif key in ("password_file", "ca_bundle"):
            out[key] = (base / Path(value).expanduser()).absolute()
        elif key == "name":
            if any(ord(c) < 32 for c in value) or value != value.strip():
                problem(where, f"{at}: no control characters or surrounding blanks")
            else:
                out[key] = value
        else:
            out[key] = value
    for pair in _EXCLUSIVE:
        if all(k in table for k in pair) and not (pair[1] == "insecure" and table["insecure"] is False):
            problem(where, f"keys {pair[0]!r} and {pair[1]!r}: give one of them, not both")
    return out


def _kind(kind: type) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number"}[kind]


# ---------------------------------------------------------------------------------------------- running


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
    return _load(db_url, db_schema, em, em.password(), em.verify(), overrides, transport)


def _load(
    db_url, db_schema, em: EM, password: str, verify: bool | str, overrides, transport
) -> pipeline.Summary:
    eng = db.engine(db_url, db_schema)
    try:
        return pipeline.run(
            eng,
            em.url,
            em.user,
            password,
            verify=verify,
            options=em.pipeline_options(overrides),
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
    on_done: Callable[[Outcome], None] | None = None,
    transport=None,
) -> Result:
    """Load every EM of `estate` into one warehouse, at most `parallel` (default: the file's) at once;
    one at a time on SQLite. Never raises for one EM's failure: each ends in an Outcome, reported
    to `on_done` as it ends. Raises ConfigError/MigrationError when the warehouse itself cannot be used
    (it is brought to the current schema once, before any load starts).

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
    secrets: list[tuple[str, bool | str] | ConfigError] = []
    for em in estate.ems:
        try:
            secrets.append((em.password(), em.verify()))
        except ConfigError as exc:
            secrets.append(exc)

    def work(index: int, em: EM) -> None:
        with slots:
            begun, begun_wall = time.monotonic(), schema.now_utc()
            stop = stopping.requested()
            if stop is not None:  # stopped while this EM waited for its turn: it never starts
                done.put((index, Outcome(em.name, NOT_STARTED, None, f"{stop} before it started")))
                return
            try:
                outcome = _outcome(em, secrets[index])
            except Exception as exc:  # a bug must not take the other EMs down with it
                log.exception("em %s: unexpected error", em.name)
                outcome = Outcome(
                    em.name, "failed", None, f"{type(exc).__name__}: {exc}", time.monotonic() - begun
                )
        if outcome.status == "failed":
            _counts_of_failed_run(db_url, db_schema, outcome, begun_wall)
        done.put((index, outcome))

    def _outcome(em: EM, secret: tuple[str, bool | str] | ConfigError) -> Outcome:
        """Load one EM; how it ended (a failure of the EM or the warehouse is an Outcome, not raised)."""
        begun = time.monotonic()
        try:
            if isinstance(secret, ConfigError):
                raise secret
            return Outcome.of(em.name, _load(db_url, db_schema, em, *secret, overrides, transport))
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
        if on_done is not None:
            on_done(outcome)
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
