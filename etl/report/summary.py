"""The report's typed summary: everything the default report shows, read from the public views in one
connection by `build()` ("now" is the database's clock, as in the views), with the headline figures
and per-job totals worked out here. The renderers (text, data, page) read a `Summary`; nothing here
renders, and nothing here imports a renderer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, Date, Engine, bindparam, func, select, text

from .. import registry
from ..schema import etl_runs, etl_settings, table
from .figures import GB
from .outcomes import finished, status
from .read import Row, instant, now, read_view

STATUS_ORDER = {"red": 0, "amber": 1, "green": 2}
BACKUP_STATUS_ORDER = {"breach": 0, "warning": 1, "ok": 2}


@dataclass(frozen=True)
class Window:
    """What the summary covers: "now" (the database's clock), the days shown (oldest first), the start
    of the 7-day window, and how many failures to list."""

    now: datetime
    days: tuple[date, ...]
    week_start: date
    failures: int

    @property
    def first_day(self) -> date:
        return self.days[0]


# ------------------------------------------------------------------ the view rows of each section
@dataclass(frozen=True)
class Reader:
    """One section of the summary: the public view it reads, and `read(conn, view, window)` giving its
    rows as the view gives them (in the view's order unless the reader says otherwise)."""

    view: str
    read: Callable[[Connection, str, Window], list[Row]]


def _since_first_day(conn: Connection, view: str, w: Window) -> list[Row]:
    """The rows of the days shown (`day_utc` from the first day on)."""
    return read_view(conn, view, "day_utc >= :first_day", first_day=w.first_day)


def _every_row(conn: Connection, view: str, w: Window) -> list[Row]:
    return read_view(conn, view)


def _newest_failures(conn: Connection, view: str, w: Window) -> list[Row]:
    return read_view(conn, view, limit=w.failures)


def _replica_machines(conn: Connection, view: str, w: Window) -> list[Row]:
    """Every replicated VM, red first and the longest without success first, with `last_task_status`."""
    vms = read_view(conn, view)
    never = float("inf")
    vms.sort(
        key=lambda v: (
            STATUS_ORDER.get(v["rpo_status"], 3),
            -(never if v["hours_since_success"] is None else v["hours_since_success"]),
            v["vm_display_name"] or "",
        )
    )
    for v in vms:
        v["last_task_status"] = status(v["last_task_state"], v["last_task_result"])
    return vms


def _backup_machines(conn: Connection, view: str, w: Window) -> list[Row]:
    """Every protected machine (VMs and agent computers), breaches first and the oldest restore point
    first, with `last_task_status`."""
    vms = read_view(conn, view)
    never = float("inf")
    vms.sort(
        key=lambda v: (
            BACKUP_STATUS_ORDER.get(v["rpo_status"], 3),
            -(never if v["point_age_hours"] is None else v["point_age_hours"]),
            v["vm_display_name"] or "",
            v["vm_key"] or "",
        )
    )
    for v in vms:
        v["last_task_status"] = status(v["last_task_state"], v["last_task_result"])
    return vms


def _newest_runs(conn: Connection, view: str, w: Window) -> list[Row]:
    """The newest logical run of each backup job among the runs started in the days shown."""
    newest: dict[tuple, Row] = {}
    for r in _since_first_day(conn, view, w):  # newest first
        newest.setdefault((r["backup_server_uid"], r["job_uid"]), r)
    return list(newest.values())


# The sections of the summary: Summary field -> the view it reads and how. A new section of the report
# is one reader here and one field of Summary (its rows land there, and in the JSON summary as they
# are) plus the panel of etl.report.page that draws it.
READERS: dict[str, Reader] = {  # in the order the page shows them (the JSON follows Summary's fields)
    "backup_daily": Reader("v_backup_job_daily", _since_first_day),
    "backup_runs": Reader("v_backup_job_runs", _newest_runs),
    "backup_machines": Reader("v_vm_backup_status", _backup_machines),
    "repositories": Reader("v_repository_capacity", _every_row),
    "repository_space": Reader("v_repository_space_daily", _since_first_day),
    "backup_failures": Reader("v_backup_failures", _newest_failures),
    "daily": Reader("v_replica_job_daily", _since_first_day),
    "vms": Reader("v_vm_replica_status", _replica_machines),
    "source_size": Reader("v_replica_source_size_daily", _since_first_day),
    "failures": Reader("v_replica_failures", _newest_failures),
}
LAST_SESSIONS_VIEW = "v_replica_job_runs"  # each replication job's newest session: _read_last_sessions
VIEWS_READ = (*(r.view for r in READERS.values()), LAST_SESSIONS_VIEW)  # every view the summary reads


def _read_last_sessions(conn: Connection, w: Window) -> dict[str, tuple[str | None, str | None]]:
    """{job_uid: (state, result) of its newest session} among sessions started in the days shown."""
    rows = conn.execute(
        text(
            "SELECT job_uid, state, result FROM (SELECT job_uid, state, result, ROW_NUMBER() OVER "
            "(PARTITION BY job_uid ORDER BY creation_time_utc DESC, session_uid DESC) AS rn "
            f"FROM {LAST_SESSIONS_VIEW} WHERE day_utc >= :first_day AND job_uid IS NOT NULL) newest "
            "WHERE rn = 1"
        ).bindparams(bindparam("first_day", w.first_day, type_=Date))
    )
    return {r.job_uid: (r.state, r.result) for r in rows}


def _read_source_24h(conn: Connection, w: Window) -> tuple[int, int]:
    """(tasks, bytes): replication tasks that finished in the last 24 h (as in
    v_replica_source_size_daily: in their final State, with an end time) and the sum of their TotalSize.
    That is the source size of the VMs processed, not bytes moved: Veeam's reference calls TotalSize the
    size of the restore points; observed values are the VM's disk size — 60 GiB, 40 GiB on a task still
    in progress, 0 on failed tasks — and EM has no transferred-bytes figure per task."""
    tasks = registry.REPLICA_TASK_SESSION
    t = table(tasks.table).c
    row = conn.execute(
        select(func.count(), func.coalesce(func.sum(t.total_size), 0)).where(
            t.end_time_utc >= w.now - timedelta(hours=24), t.state == tasks.final_state
        )
    ).one()
    return int(row[0]), int(row[1])


# ------------------------------------------------------------------ what the summary works out
@dataclass(frozen=True)
class Tiles:
    """The headline figures. Rates are 0..1 over finished runs (None: no run finished in 7 days)."""

    # replication
    vms_protected: int  # VMs with a replication task
    rpo_breaches: int
    rpo_amber: int  # VMs needing attention (amber)
    success_rate_7d: float | None
    gb_last_24h: float  # GB (2^30 bytes) of TotalSize of the tasks that ended in 24 h: not bytes moved
    tasks_last_24h: int
    # backup
    backup_machines: int  # VMs and agent computers
    backup_machines_protected: int  # ... with a restore point EM still lists
    backup_agent_computers: int
    backup_rpo_breaches: int
    backup_rpo_warnings: int
    backup_success_rate_7d: float | None
    repositories: int
    repositories_low: int
    repositories_unknown_capacity: int


@dataclass(slots=True)
class ReplicaJob:
    """A replication job over the last 7 days: run groups (a scheduled session and its automatic
    retries) by final outcome, the success rate over finished ones, and its newest session's State,
    Result (None until it has finished) and status (outcomes.status). Field order is the JSON's."""

    job_uid: str
    runs: int = 0
    successes: int = 0
    warnings: int = 0
    failures: int = 0
    recovered: int = 0
    running: int = 0
    other: int = 0
    job_name: str | None = None
    backup_server_name: str | None = None
    success_rate: float | None = None
    last_state: str | None = None
    last_result: str | None = None
    last_status: str | None = None


@dataclass(slots=True)
class BackupJob:
    """A backup job (on its backup server) over the last 7 days: logical runs by outcome (recovered,
    running, idle, other), the success rate over finished runs, and its newest run in the days shown
    (last_outcome: "running" until its last attempt has finished, "idle" while it waits for new restore
    points to copy, else the Result as EM sent it). Field order is the JSON's."""

    job_uid: str | None
    backup_server_uid: str | None
    job_name: str | None = None
    job_type: str | None = None
    backup_server_name: str | None = None
    runs: int = 0
    attempts: int = 0
    succeeded: int = 0
    warnings: int = 0
    failed: int = 0
    recovered: int = 0
    running: int = 0
    idle: int = 0
    other: int = 0
    success_rate: float | None = None
    last_outcome: str | None = None
    last_start_utc: datetime | None = None


@dataclass(frozen=True)
class Summary:
    """Everything the default report shows; field order is the JSON summary's key order.

    Settings (etl_settings, with the views' defaults), the days shown (UTC, oldest first), the headline
    figures, per-job totals, and one field per READERS key: that view's rows as it gives them.
    """

    generated_utc: datetime  # the database's clock
    last_load_utc: datetime | None  # end of the newest successful load
    rpo_hours: float
    backup_rpo_hours: float
    repository_low_free_pct: float
    days: list[date]
    tiles: Tiles
    jobs: list[ReplicaJob]
    backup_jobs: list[BackupJob]
    daily: list[Row]
    source_size: list[Row]
    vms: list[Row]
    failures: list[Row]
    backup_daily: list[Row]
    backup_runs: list[Row]
    backup_machines: list[Row]
    repositories: list[Row]
    repository_space: list[Row]
    backup_failures: list[Row]

    @property
    def replication_loaded(self) -> bool:
        """Whether the warehouse holds a replication session (else that side says "No data yet")."""
        return bool(self.vms or self.daily or self.failures)

    @property
    def backup_loaded(self) -> bool:
        """Whether the warehouse holds a backup session, restore point or repository."""
        return bool(self.backup_machines or self.backup_daily or self.backup_failures or self.repositories)


def _rate(ok: int, finished_runs: int) -> float | None:
    return None if finished_runs == 0 else ok / finished_runs


def _replica_jobs(daily: list[Row], last_sessions: dict, week_start: date) -> list[ReplicaJob]:
    jobs: dict[str, ReplicaJob] = {}
    for d in sorted(daily, key=lambda d: d["day_utc"]):
        j = jobs.setdefault(d["job_uid"], ReplicaJob(d["job_uid"]))
        j.job_name, j.backup_server_name = d["job_name"], d["backup_server_name"]
        if d["day_utc"] >= week_start:
            j.runs += d["runs"]
            j.successes += d["successes"]
            j.warnings += d["warnings"]
            j.failures += d["failures"]
            j.recovered += d["recovered"]
            j.running += d["running"]
            j.other += d["other"]
    for j in jobs.values():
        j.success_rate = _rate(j.successes + j.warnings, j.runs - j.running)
        state, result = last_sessions.get(j.job_uid, (None, None))
        j.last_state = state
        j.last_result = result if finished(state) else None
        j.last_status = status(state, result) if j.job_uid in last_sessions else None
    return sorted(jobs.values(), key=lambda j: (j.job_name or "", j.job_uid))


def _backup_jobs(daily: list[Row], newest_runs: list[Row], week_start: date) -> list[BackupJob]:
    jobs: dict[tuple, BackupJob] = {}
    for d in sorted(daily, key=lambda d: d["day_utc"]):
        j = jobs.setdefault(
            (d["backup_server_uid"], d["job_uid"]), BackupJob(d["job_uid"], d["backup_server_uid"])
        )
        j.job_name, j.job_type, j.backup_server_name = d["job_name"], d["job_type"], d["backup_server_name"]
        if d["day_utc"] >= week_start:
            j.runs += d["runs"]
            j.attempts += d["attempts"]
            j.succeeded += d["succeeded"]
            j.warnings += d["warnings"]
            j.failed += d["failed"]
            j.recovered += d["recovered"]
            j.running += d["running"]
            j.idle += d["idle"]
            j.other += d["other"]
    last = {(r["backup_server_uid"], r["job_uid"]): r for r in newest_runs}
    for key, j in jobs.items():
        j.success_rate = _rate(j.succeeded + j.warnings, j.runs - j.running - j.idle)
        run = last.get(key)
        j.last_outcome = run["outcome"] if run else None
        j.last_start_utc = run["start_utc"] if run else None
    return sorted(jobs.values(), key=lambda j: (j.job_name or "", j.job_uid or ""))


def _tiles(parts: dict[str, list[Row]], source: tuple[int, int], week_start: date) -> Tiles:
    vms, machines, repos = parts["vms"], parts["backup_machines"], parts["repositories"]
    week = [d for d in parts["daily"] if d["day_utc"] >= week_start]
    backup_week = [d for d in parts["backup_daily"] if d["day_utc"] >= week_start]
    tasks, size = source
    return Tiles(
        vms_protected=len(vms),
        rpo_breaches=sum(v["rpo_breach"] for v in vms),
        rpo_amber=sum(1 for v in vms if v["rpo_status"] == "amber"),
        success_rate_7d=_rate(
            sum(d["successes"] + d["warnings"] for d in week), sum(d["runs"] - d["running"] for d in week)
        ),
        gb_last_24h=round(size / GB, 1),
        tasks_last_24h=tasks,
        backup_machines=len(machines),
        backup_machines_protected=sum(1 for v in machines if v["restore_points"]),
        backup_agent_computers=sum(1 for v in machines if v["kind"] == "agent"),
        backup_rpo_breaches=sum(v["rpo_breach"] for v in machines),
        backup_rpo_warnings=sum(1 for v in machines if v["rpo_status"] == "warning"),
        backup_success_rate_7d=_rate(
            sum(d["succeeded"] + d["warnings"] for d in backup_week),
            sum(d["runs"] - d["running"] - d["idle"] for d in backup_week),
        ),
        repositories=len(repos),
        repositories_low=sum(1 for r in repos if r["low_free"] == 1),
        repositories_unknown_capacity=sum(1 for r in repos if r["capacity_bytes"] is None),
    )


def _setting(settings: dict[str, str], key: str, default: float) -> float:
    """An etl_settings value as a number, `default` when the row is absent or not a number (as the
    views read it)."""
    try:
        return float(settings[key])
    except (KeyError, ValueError):
        return default


def build(eng: Engine, days: int = 14, failures: int = 25) -> Summary:
    """Read the summary of the last `days` UTC days (at most `failures` newest failures per side) in one
    connection. Success rates divide by finished runs, those with an undocumented Result included.
    Raises SQLAlchemyError when the views cannot be read."""
    with eng.connect() as conn:
        clock = now(conn)
        today = clock.date()
        w = Window(
            now=clock,
            days=tuple(today - timedelta(days=days - 1 - i) for i in range(days)),
            week_start=today - timedelta(days=6),
            failures=failures,
        )
        settings = {k: v for k, v in conn.execute(select(etl_settings.c.key, etl_settings.c.value))}
        last_load = conn.execute(
            select(func.max(etl_runs.c.finished_at)).where(etl_runs.c.status == "succeeded")
        ).scalar()
        parts = {key: reader.read(conn, reader.view, w) for key, reader in READERS.items()}
        last_sessions = _read_last_sessions(conn, w)
        source = _read_source_24h(conn, w)
    return Summary(
        generated_utc=clock,
        last_load_utc=instant(last_load),
        rpo_hours=_setting(settings, "rpo_hours", 24.0),
        backup_rpo_hours=_setting(settings, "backup_rpo_hours", 24.0),
        repository_low_free_pct=_setting(settings, "repository_low_free_pct", 10.0),
        days=list(w.days),
        tiles=_tiles(parts, source, w.week_start),
        jobs=_replica_jobs(parts["daily"], last_sessions, w.week_start),
        backup_jobs=_backup_jobs(parts["backup_daily"], parts["backup_runs"], w.week_start),
        **parts,
    )
