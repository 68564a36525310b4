"""`veeam-etl metrics`: the warehouse as Prometheus metrics (text exposition, through prometheus_client).

`WarehouseCollector` reads the reporting views (sql/) and etl_runs on every collection, read-only, and
yields the families of FAMILIES; `write` puts one collection into a file atomically (node_exporter's
textfile collector) and `serve` answers GET /metrics, collecting on every scrape. The alert rules on
these families are in deploy/prometheus/, the setups in docs/alerting.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, func, select, text

from .errors import ConfigError, VeeamEtlError
from .schema import etl_runs

log = logging.getLogger(__name__)

# Labels that name what a series is about. Two things of one name (two VMs called `web01` on one
# backup server, two backup servers of one name in one source) get one more label where, and only
# where, that happens: backup_server_uid, machine_ref (the view's vm_key), job_uid or repository_uid.
MACHINE = ("source", "backup_server", "machine", "side", "kind")
JOB = ("source", "backup_server", "job", "side")
REPOSITORY = ("source", "backup_server", "repository")
SOURCE = ("source",)

MESSAGE_CHARS = 200  # EM's failure message and the loader's error as a label: at most this many characters
DAY_S = 86400.0
SUCCEEDED = ("Success", "Warning")  # a run that ended Warning succeeded, as in the views' success_rate
FILE_MODE = 0o644  # node_exporter usually runs as another user than the one writing the file
# PostgreSQL settings for the collection's transaction. The status views aggregate every task session
# and restore point: their plans cost enough for PostgreSQL's JIT compiler, whose compiling costs far
# more than it saves here, and their hash tables fit in 64 MB. v_vm_backup_status on the 100k-session
# benchmark warehouse: 3.3 s as configured by default, 0.45 s without JIT, 0.41 s without JIT at 64 MB.
PG_SETTINGS = {"work_mem": "64MB", "jit": "off"}


@dataclass(frozen=True)
class Family:
    """One metric family as exposed: its name, `gauge` or `info` (a gauge of value 1 whose labels carry
    text; the name ends in `_info`), the labels every series has, and its HELP text."""

    name: str
    kind: str
    labels: tuple[str, ...]
    help: str


FAMILIES: tuple[Family, ...] = (
    # per protected machine: v_vm_backup_status (side="backup") and v_vm_replica_status (side="replication")
    Family(
        "veeam_machine_restore_point_age_seconds",
        "gauge",
        MACHINE,
        "Age of the newest restore point (backup: of the VM or agent computer) or replica point "
        "(replication) that EM still lists, by the warehouse's clock at collection; absent when there is none.",
    ),
    Family(
        "veeam_machine_rpo_seconds",
        "gauge",
        MACHINE,
        "The recovery point objective the machine is checked against (etl_settings backup_rpo_hours / "
        "rpo_hours, default 24 h).",
    ),
    Family(
        "veeam_machine_rpo_breach",
        "gauge",
        MACHINE,
        "1 when the machine is out of its RPO as the status views judge it (backup: neither a restore "
        "point nor a successful task within the RPO; replication: no successful task within it), else 0.",
    ),
    # per job: v_backup_job_runs (side="backup") and v_replica_job_runs folded into runs (side="replication")
    Family(
        "veeam_job_last_run_info",
        "info",
        (*JOB, "job_type", "result", "message"),
        "The job's last finished run (automatic retries folded in): result as EM sent it and EM's failure "
        f"message (whitespace collapsed, at most {MESSAGE_CHARS} characters).",
    ),
    Family(
        "veeam_job_last_run_success",
        "gauge",
        JOB,
        "1 when the job's last finished run (automatic retries folded in) ended Success or Warning, "
        "0 when it ended Failed or with any other result.",
    ),
    Family(
        "veeam_job_last_run_end_timestamp_seconds",
        "gauge",
        JOB,
        "End of the job's last finished run, Unix time.",
    ),
    Family(
        "veeam_job_last_success_timestamp_seconds",
        "gauge",
        JOB,
        "End of the job's last run that ended Success or Warning, Unix time; absent when none did.",
    ),
    Family(
        "veeam_job_runs_24h",
        "gauge",
        JOB,
        "Runs of the job (automatic retries folded in) that started in the 24 hours before collection.",
    ),
    Family(
        "veeam_job_failed_runs_24h",
        "gauge",
        JOB,
        "Of veeam_job_runs_24h, the runs whose final result is Failed.",
    ),
    # per repository: v_repository_capacity
    Family(
        "veeam_repository_capacity_bytes",
        "gauge",
        REPOSITORY,
        "Capacity of the backup repository; absent when EM does not know it.",
    ),
    Family(
        "veeam_repository_free_bytes",
        "gauge",
        REPOSITORY,
        "Free space of the backup repository; absent when EM does not know it.",
    ),
    # per source (one Enterprise Manager): etl_runs
    Family(
        "veeam_etl_last_success_timestamp_seconds",
        "gauge",
        SOURCE,
        "End of the loader's last successful run of this source, Unix time.",
    ),
    Family(
        "veeam_etl_last_run_info",
        "info",
        (*SOURCE, "status", "mode", "error"),
        "The loader's last finished run of this source: status (succeeded, failed), mode, and its error "
        f"(at most {MESSAGE_CHARS} characters; empty when it succeeded).",
    ),
    Family(
        "veeam_etl_last_run_success",
        "gauge",
        SOURCE,
        "1 when the loader's last finished run of this source succeeded, else 0.",
    ),
    Family(
        "veeam_etl_last_run_end_timestamp_seconds",
        "gauge",
        SOURCE,
        "End of the loader's last finished run of this source, Unix time.",
    ),
    Family(
        "veeam_etl_last_run_duration_seconds",
        "gauge",
        SOURCE,
        "Duration of the loader's last finished run of this source.",
    ),
    Family(
        "veeam_etl_last_run_rows_written",
        "gauge",
        (*SOURCE, "operation"),
        "Rows the loader's last finished run of this source inserted or updated (operation label).",
    ),
    Family(
        "veeam_etl_last_run_requests",
        "gauge",
        SOURCE,
        "HTTP requests the loader's last finished run of this source sent to Enterprise Manager.",
    ),
    Family(
        "veeam_etl_last_run_undocumented_values",
        "gauge",
        SOURCE,
        "Values EM documents nowhere that the loader's last finished run of this source stored as sent.",
    ),
)
BY_NAME = {f.name: f for f in FAMILIES}


# ------------------------------------------------------------------ values
def _epoch(value) -> float | None:
    """An instant from the warehouse (aware datetime on PostgreSQL, UTC text on SQLite) as Unix seconds."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)  # also reads a trailing Z
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def bounded(message: str | None, limit: int = MESSAGE_CHARS) -> str:
    """`message` as one label value: whitespace runs collapsed to one space, at most `limit` characters
    (cut ones end in "…"); "" for None."""
    if not message:
        return ""
    flat = re.sub(r"\s+", " ", message).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass
class _Series:
    """What some samples are about (a machine, a job, a repository, a source): its labels, its backup
    server, the label that tells it from another of the same name, and its samples
    (family, extra labels, value)."""

    labels: dict[str, str]
    server_uid: str | None = None
    ref: tuple[str, str] = ("", "")
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def add(self, family: str, value: float | None, **extra: str) -> None:
        if value is not None:
            self.samples.append((family, extra, float(value)))


def _label_set(s: _Series) -> tuple:
    return tuple(sorted(s.labels.items()))


def _collisions(series: list[_Series], keys: dict[int, tuple]) -> list[list[_Series]]:
    """Groups of two or more series with one label set; `keys` holds each series' label set by id."""
    groups: dict[tuple, list[_Series]] = defaultdict(list)
    for s in series:
        groups[keys[id(s)]].append(s)
    return [g for g in groups.values() if len(g) > 1]


def _distinct(series: list[_Series]) -> list[_Series]:
    """Give series that would share one label set the labels that tell them apart: backup_server_uid
    where backup servers of one name differ, then their own ref (e.g. job_uid) where still needed."""
    keys = {id(s): _label_set(s) for s in series}
    for group in _collisions(series, keys):
        if len({s.server_uid for s in group}) > 1:
            for s in group:
                s.labels["backup_server_uid"] = s.server_uid or ""
                keys[id(s)] = _label_set(s)
    for group in _collisions(series, keys):
        for s in group:
            s.labels[s.ref[0]] = s.ref[1]
    return series


# ------------------------------------------------------------------ reading the warehouse
@dataclass(frozen=True)
class _Servers:
    """{backup server uid: (name, source)}: the backup_server and source labels of a row."""

    known: dict[str | None, tuple[str, str]]

    def labels(self, uid: str | None) -> dict[str, str]:
        name, source = self.known.get(uid, ("", ""))
        return {"source": source, "backup_server": name}


def _servers(conn: Connection) -> _Servers:
    rows = conn.execute(text("SELECT uid, name, source FROM backup_servers"))
    return _Servers({r.uid: (r.name or "", r.source or "") for r in rows})


# Backup: VMs (kind 'vm') and agent computers ('agent'); replication: VMs only.
BACKUP_MACHINES = """
SELECT backup_server_uid, vm_key, vm_display_name, newest_point_utc, rpo_hours, rpo_breach, kind
FROM v_vm_backup_status
"""
REPLICA_MACHINES = """
SELECT backup_server_uid, vm_display_name AS vm_key, vm_display_name, newest_point_utc, rpo_hours,
       rpo_breach, 'vm' AS kind
FROM v_vm_replica_status
"""


def _machines(conn: Connection, now: float, servers: _Servers) -> list[_Series]:
    out = []
    for side, sql in (("backup", BACKUP_MACHINES), ("replication", REPLICA_MACHINES)):
        for server_uid, vm_key, name, newest_point_utc, rpo_hours, rpo_breach, kind in conn.execute(
            text(sql)
        ):
            labels = servers.labels(server_uid)
            labels.update(machine=name or vm_key or "", side=side, kind=kind)
            s = _Series(labels, server_uid, ("machine_ref", vm_key or ""))
            newest = _epoch(newest_point_utc)
            s.add("veeam_machine_restore_point_age_seconds", None if newest is None else now - newest)
            s.add("veeam_machine_rpo_seconds", float(rpo_hours) * 3600.0)
            s.add("veeam_machine_rpo_breach", int(rpo_breach))
            out.append(s)
    return out


@dataclass
class _Run:
    """One logical run of a job: a scheduled session and its automatic retries."""

    start: float
    end: float | None
    outcome: str  # 'running', or the Result of its last attempt as EM sent it ('None' when none)
    message: str | None


@dataclass
class _Job:
    uid: str
    name: str
    job_type: str
    server_uid: str | None
    runs: list[_Run] = field(default_factory=list)


def _backup_jobs(conn: Connection) -> list[_Job]:
    """Backup, copy and agent jobs with their runs as v_backup_job_runs folds them (read from its helper
    v__backup_runs: the same runs without the task counts, which the metrics do not use)."""
    jobs: dict[tuple, _Job] = {}
    rows = conn.execute(
        text(
            "SELECT backup_server_uid, job_uid, job_name, job_type, start_utc, end_utc, outcome, "
            "failure_message FROM v__backup_runs WHERE job_uid IS NOT NULL"
        )
    )
    for r in rows:
        job = jobs.setdefault(
            (r.backup_server_uid, r.job_uid),
            _Job(r.job_uid, r.job_name or "", r.job_type or "", r.backup_server_uid),
        )
        start = _epoch(r.start_utc)
        if start is not None:
            job.runs.append(_Run(start, _epoch(r.end_utc), r.outcome, r.failure_message))
    return list(jobs.values())


def _replica_jobs(conn: Connection) -> list[_Job]:
    """Replication jobs with their sessions folded into runs by v_replica_job_daily's rule: a run is a
    scheduled (non-retry) session and the retry sessions of the same job that start after it, before its
    next scheduled one (retries with no scheduled session before them form a run of their own); its
    outcome is that of its newest session: 'running' until that session's State is Stopped, then its
    Result. The job's name and backup server are those of its newest session. The sessions are
    v_replica_job_runs' rows, read from its helper v__job_sessions (without the task counts)."""
    types = {uid: job_type for uid, job_type in conn.execute(text("SELECT uid, job_type FROM jobs"))}
    sessions: dict[str, list] = defaultdict(list)
    rows = conn.execute(
        text(
            "SELECT job_uid, job_name, backup_server_uid, uid AS session_uid, creation_time_utc, end_time_utc, "
            "state, result, is_retry, failure_message FROM v__job_sessions "
            "WHERE job_uid IS NOT NULL AND creation_time_utc IS NOT NULL"
        )
    )
    for r in rows:
        sessions[r.job_uid].append((_epoch(r.creation_time_utc), r.session_uid, r))
    jobs = []
    for uid, found in sessions.items():
        found.sort(key=lambda s: (s[0], s[1]))
        newest = found[-1][2]
        job = _Job(uid, newest.job_name or "", types.get(uid) or "", newest.backup_server_uid)
        groups: list[list] = []
        for start, _, r in found:
            if not r.is_retry or not groups:
                groups.append([])
            groups[-1].append((start, r))
        for group in groups:
            last = group[-1][1]
            finished = last.state == "Stopped"
            job.runs.append(
                _Run(
                    group[0][0],
                    _epoch(last.end_time_utc) if finished else None,
                    (last.result or "None") if finished else "running",
                    last.failure_message,
                )
            )
        jobs.append(job)
    return jobs


def _jobs(conn: Connection, now: float, servers: _Servers) -> list[_Series]:
    out = []
    for side, jobs in (("backup", _backup_jobs(conn)), ("replication", _replica_jobs(conn))):
        for job in jobs:
            s = _Series(
                {**servers.labels(job.server_uid), "job": job.name, "side": side},
                job.server_uid,
                ("job_uid", job.uid),
            )
            done = [r for r in job.runs if r.outcome != "running"]
            if done:
                last = max(done, key=lambda r: r.start)
                s.add(
                    "veeam_job_last_run_info",
                    1,
                    job_type=job.job_type,
                    result=last.outcome,
                    message=bounded(last.message),
                )
                s.add("veeam_job_last_run_success", int(last.outcome in SUCCEEDED))
                s.add("veeam_job_last_run_end_timestamp_seconds", last.end)
            ends = [r.end for r in done if r.outcome in SUCCEEDED and r.end is not None]
            s.add("veeam_job_last_success_timestamp_seconds", max(ends) if ends else None)
            recent = [r for r in job.runs if r.start >= now - DAY_S]
            s.add("veeam_job_runs_24h", len(recent))
            s.add("veeam_job_failed_runs_24h", sum(r.outcome == "Failed" for r in recent))
            out.append(s)
    return out


def _repositories(conn: Connection, servers: _Servers) -> list[_Series]:
    out = []
    rows = conn.execute(
        text(
            "SELECT repository_uid, repository_name, backup_server_uid, capacity_bytes, free_bytes "
            "FROM v_repository_capacity"
        )
    )
    for r in rows:
        s = _Series(
            {**servers.labels(r.backup_server_uid), "repository": r.repository_name or ""},
            r.backup_server_uid,
            ("repository_uid", r.repository_uid),
        )
        s.add("veeam_repository_capacity_bytes", r.capacity_bytes)
        s.add("veeam_repository_free_bytes", r.free_bytes)
        out.append(s)
    return out


def _sources(conn: Connection) -> list[_Series]:
    """Per source in etl_runs: its last finished run (the newest by id whose status is not 'running')
    and the end of its last successful run."""
    newest = select(func.max(etl_runs.c.id)).where(etl_runs.c.status != "running").group_by(etl_runs.c.source)
    last_success = {
        source: finished
        for source, finished in conn.execute(
            select(etl_runs.c.source, func.max(etl_runs.c.finished_at))
            .where(etl_runs.c.status == "succeeded")
            .group_by(etl_runs.c.source)
        )
    }
    out = {}
    for r in conn.execute(select(etl_runs).where(etl_runs.c.id.in_(newest))).mappings():
        s = out[r["source"]] = _Series({"source": r["source"]})
        s.add(
            "veeam_etl_last_run_info",
            1,
            status=r["status"],
            mode=r["mode"],
            error=bounded(r["error"]),
        )
        s.add("veeam_etl_last_run_success", int(r["status"] == "succeeded"))
        end, start = _epoch(r["finished_at"]), _epoch(r["started_at"])
        s.add("veeam_etl_last_run_end_timestamp_seconds", end)
        s.add("veeam_etl_last_run_duration_seconds", None if end is None or start is None else end - start)
        s.add("veeam_etl_last_run_rows_written", r["rows_inserted"], operation="inserted")
        s.add("veeam_etl_last_run_rows_written", r["rows_updated"], operation="updated")
        s.add("veeam_etl_last_run_requests", r["requests"])
        s.add("veeam_etl_last_run_undocumented_values", r["new_values"])
    for source, finished in last_success.items():
        s = out.setdefault(source, _Series({"source": source}))
        s.add("veeam_etl_last_success_timestamp_seconds", _epoch(finished))
    return list(out.values())


@contextlib.contextmanager
def _reading(eng: Engine) -> Iterator[Connection]:
    """A connection in one read-only transaction: on PostgreSQL REPEATABLE READ READ ONLY (every family
    from one snapshot, "now" one instant) with PG_SETTINGS; on SQLite one deferred read transaction.
    Rolled back at the end: nothing is ever written."""
    with eng.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            for name, setting in PG_SETTINGS.items():  # for this transaction only (is_local)
                conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": setting})
        else:
            conn.exec_driver_sql("BEGIN")
        try:
            yield conn
        finally:
            conn.rollback()


def collect(eng: Engine) -> list[Metric]:
    """One reading of the warehouse as prometheus_client metric families, in FAMILIES order (a family with
    no series is left out). Raises SQLAlchemyError when the warehouse cannot be read."""
    with _reading(eng) as conn:
        now = float(conn.execute(text("SELECT now_epoch FROM v__clock")).scalar_one())
        servers = _servers(conn)
        series = [
            *_distinct(_machines(conn, now, servers)),
            *_distinct(_jobs(conn, now, servers)),
            *_distinct(_repositories(conn, servers)),
            *_sources(conn),
        ]
    families: dict[str, Metric] = {}
    for s in series:
        for name, extra, value in s.samples:
            metric = families.get(name)
            if metric is None:
                f = BY_NAME[name]
                metric = families[name] = Metric(f.name.removesuffix("_info"), f.help, f.kind)
            metric.add_sample(name, {**s.labels, **extra} if extra else s.labels, value)
    return [families[f.name] for f in FAMILIES if f.name in families]


class WarehouseCollector(Collector):
    """A prometheus_client collector that reads the warehouse on every collection (collect())."""

    def __init__(self, eng: Engine):
        self.eng = eng

    def collect(self) -> Iterable[Metric]:
        return collect(self.eng)

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not read the warehouse


def registry(eng: Engine) -> CollectorRegistry:
    """A registry holding only the warehouse's families (no process or Python metrics of this command)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(WarehouseCollector(eng))
    return reg


def exposition(eng: Engine) -> bytes:
    """One collection in the Prometheus text format (version 0.0.4)."""
    return generate_latest(registry(eng))


# ------------------------------------------------------------------ the textfile
def write(eng: Engine, path: str | os.PathLike) -> Path:
    """Write one collection to `path` atomically: into a temporary file in the same directory (named
    `.<name>.*.tmp`, which node_exporter's textfile collector ignores: it reads `*.prom`), flushed to
    disk, mode 0644, then renamed over `path`, so a reader sees the old file or the new one, never part
    of one. A failing collection leaves the old file as it was. Returns the absolute path.

    Raises ConfigError (the directory does not exist or is not writable), VeeamEtlError (writing
    failed, e.g. the disk is full) or SQLAlchemyError (the warehouse could not be read)."""
    target = Path(path).absolute()
    directory = target.parent
    if not directory.is_dir():
        raise ConfigError(f"--out {path}: directory {directory} does not exist")
    if target.is_dir():
        raise ConfigError(f"--out {path} is a directory: name a file, e.g. {target / 'veeam.prom'}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {path}: directory {directory} is not writable by this user")
    if target.suffix != ".prom":
        log.warning("--out %s: node_exporter's textfile collector reads only files ending in .prom", path)
    body = exposition(eng)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a crash
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise VeeamEtlError(f"cannot write metrics to {target}: {exc.strerror or exc}") from None
    return target


# ------------------------------------------------------------------ the scrape endpoint
def listen_address(value: str) -> tuple[str, int]:
    """`HOST:PORT` as (host, port): an IPv6 address in brackets (`[::1]:9469`), an empty host for every
    IPv4 interface (`:9469`), port 0 for any free port. Raises ConfigError."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"--listen {value!r}: write HOST:PORT, e.g. 127.0.0.1:9469 or [::1]:9469")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"--listen {value!r}: write an IPv6 address in brackets, e.g. [::1]:{port}")
    return host or "0.0.0.0", int(port)


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)


def app(eng: Engine) -> Callable:
    """The WSGI application: GET /metrics collects and answers in the text format (gzip and OpenMetrics
    when the scraper asks, by prometheus_client); any other path is 404. A collection that fails answers
    500 with the cause in one line, logged as an error, and the next scrape tries again."""
    metrics_app = make_wsgi_app(registry(eng))

    def serve_metrics(environ, start_response):
        plain = [("Content-Type", "text/plain; charset=utf-8")]
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", plain)
            return [b"veeam-etl: the metrics are at /metrics\n"]
        try:
            return metrics_app(environ, start_response)
        except Exception as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            message = f"collecting metrics failed: {type(exc).__name__}: {detail[0] if detail else ''}"
            log.error("%s", message)
            start_response("500 Internal Server Error", plain)
            return [message.encode() + b"\n"]

    return serve_metrics


def server(eng: Engine, host: str, port: int) -> WSGIServer:
    """An HTTP server for app(eng) bound to (host, port), one thread per request; call serve_forever().
    Raises ConfigError when the address cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(ThreadingMixIn, WSGIServer):
        address_family = family
        daemon_threads = True

    try:
        return make_server(host, port, app(eng), server_class=Server, handler_class=_Handler)
    except OSError as exc:
        raise ConfigError(f"--listen {host}:{port}: cannot listen there: {exc.strerror or exc}") from None
