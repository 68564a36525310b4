"""One collection of `veeam-etl metrics`: the reporting views (read as the report reads them,
etl.report.read; job runs from the views' helpers, without the task counts they add) and etl_runs,
read in one read-only transaction, as the families of etl.metrics.families. Also the one Python copy
of v_replica_job_daily's run-group rule (`replica_runs`).
"""

from __future__ import annotations

import contextlib
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, func, select, text

from .. import registry as types
from ..report.read import Row, instant, now, read_view
from ..schema import backup_servers, etl_runs, jobs
from .families import BY_NAME, FAMILIES, MESSAGE_CHARS

DAY_S = 86400.0
SUCCEEDED = ("Success", "Warning")  # a run that ended Warning succeeded, as in the views' success_rate
# PostgreSQL settings for the collection's transaction. The status views aggregate every task session
# and restore point: their plans cost enough for PostgreSQL's JIT compiler, whose compiling costs far
# more than it saves here, and their hash tables fit in 64 MB. v_vm_backup_status on the 100k-session
# benchmark warehouse: 3.3 s as configured by default, 0.45 s without JIT, 0.41 s without JIT at 64 MB.
PG_SETTINGS = {"work_mem": "64MB", "jit": "off"}


def _epoch(value) -> float | None:
    """An instant from the warehouse as Unix seconds; None for None."""
    moment = instant(value)
    return None if moment is None else moment.timestamp()


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
    b = backup_servers.c
    rows = conn.execute(select(b.uid, b.name, b.source))
    return _Servers({r.uid: (r.name or "", r.source or "") for r in rows})


# The columns read of each status view. Backup: VMs (kind 'vm') and agent computers ('agent');
# replication: VMs only, keyed by their name (v_vm_replica_status has one row per VM name and server).
MACHINE_COLUMNS = ("backup_server_uid", "vm_display_name", "newest_point_utc", "rpo_hours", "rpo_breach")


def _machines(conn: Connection, now_s: float, servers: _Servers) -> list[_Series]:
    backup = read_view(conn, "v_vm_backup_status", columns=(*MACHINE_COLUMNS, "vm_key", "kind"))
    replication = [
        {**r, "vm_key": r["vm_display_name"], "kind": "vm"}
        for r in read_view(conn, "v_vm_replica_status", columns=MACHINE_COLUMNS)
    ]
    out = []
    for side, rows in (("backup", backup), ("replication", replication)):
        for r in rows:
            s = _Series(
                {
                    **servers.labels(r["backup_server_uid"]),
                    "machine": r["vm_display_name"] or r["vm_key"] or "",
                },
                r["backup_server_uid"],
                ("machine_ref", r["vm_key"] or ""),
            )
            s.labels.update(side=side, kind=r["kind"])
            newest = _epoch(r["newest_point_utc"])
            s.add("veeam_machine_restore_point_age_seconds", None if newest is None else now_s - newest)
            s.add("veeam_machine_rpo_seconds", float(r["rpo_hours"]) * 3600.0)
            s.add("veeam_machine_rpo_breach", int(r["rpo_breach"]))
            out.append(s)
    return out


@dataclass
class Run:
    """One logical run of a job: a scheduled session and its automatic retries. Unix seconds."""

    start: float
    end: float | None  # None until it has finished
    outcome: str  # 'running', or the Result of its last attempt as EM sent it ('None' when none)
    message: str | None


@dataclass
class _Job:
    uid: str
    name: str
    job_type: str
    server_uid: str | None
    runs: list[Run] = field(default_factory=list)


def _helper_rows(conn: Connection, sql: str) -> list[Row]:
    """Rows of a query over helper views (v__*) as dicts, `*_utc` columns as aware UTC datetimes."""
    out = []
    for mapping in conn.execute(text(sql)).mappings():
        row = dict(mapping)
        for column, value in row.items():
            if column.endswith("_utc"):
                row[column] = instant(value)
        out.append(row)
    return out


def _backup_jobs(conn: Connection) -> list[_Job]:
    """Backup, copy and agent jobs with their runs as v_backup_job_runs folds them (read from its helper
    v__backup_runs: the same runs without the task counts, which the metrics do not use)."""
    found: dict[tuple, _Job] = {}
    for r in _helper_rows(
        conn,
        "SELECT backup_server_uid, job_uid, job_name, job_type, start_utc, end_utc, outcome, "
        "failure_message FROM v__backup_runs WHERE job_uid IS NOT NULL",
    ):
        job = found.setdefault(
            (r["backup_server_uid"], r["job_uid"]),
            _Job(r["job_uid"], r["job_name"] or "", r["job_type"] or "", r["backup_server_uid"]),
        )
        start = _epoch(r["start_utc"])
        if start is not None:
            job.runs.append(Run(start, _epoch(r["end_utc"]), r["outcome"], r["failure_message"]))
    return list(found.values())


def replica_runs(sessions: list[Row]) -> list[Run]:
    """One replication job's sessions (rows of v_replica_job_runs, oldest first by creation time, then
    uid) folded into runs by v_replica_job_daily's rule: a run is a scheduled (non-retry) session and the
    retry sessions of the same job that start after it, before its next scheduled one (retries with no
    scheduled session before them form a run of their own); its outcome is that of its newest session:
    'running' until that session's State is the final one (Stopped), then its Result ('None' when none).

    The rule is written twice, here and in SQL (sql/v_replica_job_daily.sql), until sql/ gets a view of
    replication runs (as v__backup_runs is for backup); tests/e2e/test_metrics.py holds them equal."""
    final = types.REPLICA_JOB_SESSION.final_state
    groups: list[list[Row]] = []
    for r in sessions:
        if not r["is_retry"] or not groups:
            groups.append([])
        groups[-1].append(r)
    runs = []
    for group in groups:
        last = group[-1]
        finished = last["state"] == final
        runs.append(
            Run(
                group[0]["creation_time_utc"].timestamp(),
                _epoch(last["end_time_utc"]) if finished else None,
                (last["result"] or "None") if finished else "running",
                last["failure_message"],
            )
        )
    return runs


def _replica_jobs(conn: Connection) -> list[_Job]:
    """Replication jobs with their sessions folded into runs (replica_runs). The job's name and backup
    server are those of its newest session, its type that of its row in jobs."""
    job_types = {r.uid: r.job_type for r in conn.execute(select(jobs.c.uid, jobs.c.job_type))}
    sessions: dict[str, list[Row]] = defaultdict(list)
    rows = _helper_rows(  # v_replica_job_runs' sessions, from its helper (without the task counts)
        conn,
        "SELECT job_uid, job_name, backup_server_uid, uid AS session_uid, creation_time_utc, "
        "end_time_utc, state, result, is_retry, failure_message FROM v__job_sessions "
        "WHERE job_uid IS NOT NULL AND creation_time_utc IS NOT NULL",
    )
    for r in rows:
        sessions[r["job_uid"]].append(r)
    out = []
    for uid, found in sessions.items():
        found.sort(key=lambda r: (r["creation_time_utc"], r["session_uid"]))
        newest = found[-1]
        job = _Job(uid, newest["job_name"] or "", job_types.get(uid) or "", newest["backup_server_uid"])
        job.runs = replica_runs(found)
        out.append(job)
    return out


def _jobs(conn: Connection, now_s: float, servers: _Servers) -> list[_Series]:
    out = []
    for side, found in (("backup", _backup_jobs(conn)), ("replication", _replica_jobs(conn))):
        for job in found:
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
            recent = [r for r in job.runs if r.start >= now_s - DAY_S]
            s.add("veeam_job_runs_24h", len(recent))
            s.add("veeam_job_failed_runs_24h", sum(r.outcome == "Failed" for r in recent))
            out.append(s)
    return out


def _repositories(conn: Connection, servers: _Servers) -> list[_Series]:
    out = []
    columns = ("repository_uid", "repository_name", "backup_server_uid", "capacity_bytes", "free_bytes")
    for r in read_view(conn, "v_repository_capacity", columns=columns):
        s = _Series(
            {**servers.labels(r["backup_server_uid"]), "repository": r["repository_name"] or ""},
            r["backup_server_uid"],
            ("repository_uid", r["repository_uid"]),
        )
        s.add("veeam_repository_capacity_bytes", r["capacity_bytes"])
        s.add("veeam_repository_free_bytes", r["free_bytes"])
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
        now_s = now(conn).timestamp()
        servers = _servers(conn)
        series = [
            *_distinct(_machines(conn, now_s, servers)),
            *_distinct(_jobs(conn, now_s, servers)),
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
