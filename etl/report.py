"""`veeam-etl report`: read the reporting views (sql/) and render them as terminal tables, CSV, JSON,
or one self-contained HTML page (etl.report_html, charts from etl.charts).

Reads only the public views, the base tables for one figure, and etl_settings; never writes.
A session's outcome is shown by `status()`: "running" (or its State) until EM says it has finished,
then its Result as sent, known or not.
"""

from __future__ import annotations

import csv
import io
import json
import re
import textwrap
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Connection, Date, Engine, bindparam, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from . import db, views
from .errors import ConfigError, LoadError
from .schema import UTCDateTime, etl_runs, etl_settings, replica_task_sessions

# Public views and the order their rows are read in (views themselves keep no order): every view in
# sql/ not named v__*, with the ORDER BY list of its `-- order:` line (etl.views.public).
VIEWS: dict[str, str] = views.public()
FORMATS = ("table", "csv", "json", "html")
GB = 2**30  # Veeam's consoles count GB and TB in powers of two
GB_PER_TB = 1024
WIDTH = 100  # columns the terminal summary fits in
STATUS_ORDER = {"red": 0, "amber": 1, "green": 2}
BACKUP_STATUS_ORDER = {"breach": 0, "warning": 1, "ok": 2}


# ------------------------------------------------------------------ values
def _instant(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _value(column: str, value):
    """One cell the same on both databases: aware UTC datetimes, dates, ints and floats."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bool):
        return int(value)
    if column == "day_utc" or column.endswith("_day_utc"):
        if isinstance(value, str):
            return date.fromisoformat(value[:10])
        return value.date() if isinstance(value, datetime) else value
    if column.endswith("_utc"):
        return _instant(value)
    return value


def text_of(value) -> str:
    """A cell as text for CSV and JSON: ISO 8601 instants ending in Z, dates as YYYY-MM-DD."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _json_default(value):
    if isinstance(value, datetime | date):
        return text_of(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# ------------------------------------------------------------------ reading
def read_view(conn: Connection, name: str, where: str = "", limit: int | None = None, **params) -> list[dict]:
    """Rows of one public view as dicts, in the view's documented order."""
    if name not in VIEWS:
        raise ConfigError(f"unknown view {name!r}: choose one of {', '.join(VIEWS)}")
    sql = f"SELECT * FROM {name}{' WHERE ' + where if where else ''} ORDER BY {VIEWS[name]}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    stmt = text(sql)
    for key, value in params.items():
        stmt = stmt.bindparams(
            bindparam(
                key,
                value,
                type_=Date if isinstance(value, date) and not isinstance(value, datetime) else UTCDateTime,
            )
        )
    result = conn.execute(stmt)
    cols = list(result.keys())
    return [{c: _value(c, v) for c, v in zip(cols, row, strict=True)} for row in result]


def view_columns(conn: Connection, name: str) -> list[str]:
    if name not in VIEWS:
        raise ConfigError(f"unknown view {name!r}: choose one of {', '.join(VIEWS)}")
    return list(conn.execute(text(f"SELECT * FROM {name} WHERE 1 = 0")).keys())


def _rate(ok: int, finished: int) -> float | None:
    return None if finished == 0 else ok / finished


# ------------------------------------------------------------------ session outcomes
# EM's session State is an open set: it mirrors Veeam Backup & Replication's session records, whose
# states (Idle, Pending, WaitingRepository, Postprocessing, ...) EM's REST reference does not list and
# which grow with VBR versions. So a session is finished when its State is Stopped (job) or Completed
# (task), never because its State is missing from some list of running ones.
FINISHED_STATES = frozenset({"Stopped", "Completed"})
# Unfinished states that read simply as "running"; any other unfinished state is shown as EM sent it.
RUNNING_STATES = frozenset({"Starting", "Working", "InProgress", "Resuming"})
RUNNING = "running"
NO_RESULT = "no result"


def finished(state: str | None) -> bool:
    """True when a session's State says it has ended (Stopped or Completed)."""
    return state in FINISHED_STATES


def status(state: str | None, result: str | None) -> str:
    """What a session's outcome reads as in every summary.

    Not finished (State other than Stopped/Completed, whatever Result says): "running" for
    Starting/Working/InProgress/Resuming or no State, else the State as EM sent it
    (e.g. "WaitingRepository"). Finished: the Result as EM sent it, known or not (an unknown value is
    never read as success); EM's "None" or no Result reads "no result".
    """
    if not finished(state):
        return RUNNING if state is None or state in RUNNING_STATES else str(state)
    return NO_RESULT if result is None or result == "None" else str(result)


def _display_rows(rows: list[dict]) -> list[dict]:
    """View rows as the terminal table shows them: a result column of a session that has not finished
    reads `status()` ("running", or its State), never EM's raw "None"; CSV and JSON keep the view as is."""
    pairs = [("state", "result"), ("last_task_state", "last_task_result"), ("last_state", "last_result")]
    out = []
    for row in rows:
        row = dict(row)
        for state_col, result_col in pairs:
            if state_col in row and result_col in row and row[result_col] is not None:
                row[result_col] = status(row[state_col], row[result_col])
        if row.get("final_result") == "None":  # v_replica_job_daily: the day's latest run group
            row["final_result"] = RUNNING if row.get("running") else NO_RESULT
        out.append(row)
    return out


# ------------------------------------------------------------------ the summary
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


def _read_daily(conn: Connection, w: Window) -> list[dict]:
    return read_view(conn, "v_replica_job_daily", "day_utc >= :first_day", first_day=w.first_day)


def _read_source_size(conn: Connection, w: Window) -> list[dict]:
    return read_view(conn, "v_replica_source_size_daily", "day_utc >= :first_day", first_day=w.first_day)


def _read_vms(conn: Connection, w: Window) -> list[dict]:
    vms = read_view(conn, "v_vm_replica_status")
    never = float("inf")
    vms.sort(
        key=lambda v: (
            STATUS_ORDER.get(v["rpo_status"], 3),  # red first, the longest without success first
            -(never if v["hours_since_success"] is None else v["hours_since_success"]),
            v["vm_display_name"] or "",
        )
    )
    for v in vms:
        v["last_task_status"] = status(v["last_task_state"], v["last_task_result"])
    return vms


def _read_failures(conn: Connection, w: Window) -> list[dict]:
    return read_view(conn, "v_replica_failures", limit=w.failures)


def _read_backup_daily(conn: Connection, w: Window) -> list[dict]:
    return read_view(conn, "v_backup_job_daily", "day_utc >= :first_day", first_day=w.first_day)


def _read_backup_runs(conn: Connection, w: Window) -> list[dict]:
    """The newest logical run of each backup job among the runs started in the window."""
    rows = read_view(conn, "v_backup_job_runs", "day_utc >= :first_day", first_day=w.first_day)
    newest: dict[tuple, dict] = {}
    for r in rows:  # newest first
        newest.setdefault((r["backup_server_uid"], r["job_uid"]), r)
    return list(newest.values())


def _read_backup_machines(conn: Connection, w: Window) -> list[dict]:
    """Every protected machine (VMs and agent computers: v_vm_backup_status), breaches first."""
    vms = read_view(conn, "v_vm_backup_status")
    never = float("inf")
    vms.sort(
        key=lambda v: (
            BACKUP_STATUS_ORDER.get(v["rpo_status"], 3),  # breach first, the oldest restore point first
            -(never if v["point_age_hours"] is None else v["point_age_hours"]),
            v["vm_display_name"] or "",
            v["vm_key"] or "",
        )
    )
    for v in vms:
        v["last_task_status"] = status(v["last_task_state"], v["last_task_result"])
    return vms


def _read_repositories(conn: Connection, w: Window) -> list[dict]:
    return read_view(conn, "v_repository_capacity")


def _read_repository_space(conn: Connection, w: Window) -> list[dict]:
    return read_view(conn, "v_repository_space_daily", "day_utc >= :first_day", first_day=w.first_day)


def _read_backup_failures(conn: Connection, w: Window) -> list[dict]:
    return read_view(conn, "v_backup_failures", limit=w.failures)


def _read_last_sessions(conn: Connection, w: Window) -> dict[str, dict]:
    """{job_uid: its newest session's state and result} among sessions started in the window."""
    rows = conn.execute(
        text(
            "SELECT job_uid, state, result FROM (SELECT job_uid, state, result, ROW_NUMBER() OVER "
            "(PARTITION BY job_uid ORDER BY creation_time_utc DESC, session_uid DESC) AS rn "
            "FROM v_replica_job_runs WHERE day_utc >= :first_day AND job_uid IS NOT NULL) newest "
            "WHERE rn = 1"
        ).bindparams(bindparam("first_day", w.first_day, type_=Date))
    )
    return {r.job_uid: {"state": r.state, "result": r.result} for r in rows}


def _read_source_24h(conn: Connection, w: Window) -> dict:
    """Tasks that finished in the last 24 h (as in v_replica_source_size_daily: State Completed, with an
    end time) and the sum of their TotalSize in bytes: the source size of the VMs processed,
    not bytes moved. (Veeam's reference calls TotalSize the size of the restore points; observed values
    are the VM's disk size — 60 GiB, 40 GiB on a task still in progress, 0 on failed tasks — and EM
    has no transferred-bytes figure per task.)"""
    t = replica_task_sessions.c
    row = conn.execute(
        select(func.count(), func.coalesce(func.sum(t.total_size), 0)).where(
            t.end_time_utc >= w.now - timedelta(hours=24), t.state == "Completed"
        )
    ).one()
    return {"tasks": int(row[0]), "bytes": int(row[1])}


# The sections of the summary: key -> the query that reads its rows. A new section of the report is one
# reader here (its rows land in summary()[key], and in the JSON summary as they are) plus one function
# in etl.report_html.SECTIONS that draws it.
READERS: dict[str, Callable[[Connection, Window], list[dict]]] = {
    "daily": _read_daily,
    "source_size": _read_source_size,
    "vms": _read_vms,
    "failures": _read_failures,
    "backup_daily": _read_backup_daily,
    "backup_runs": _read_backup_runs,
    "backup_machines": _read_backup_machines,
    "repositories": _read_repositories,
    "repository_space": _read_repository_space,
    "backup_failures": _read_backup_failures,
}


def _jobs(daily: list[dict], last_sessions: dict[str, dict], week_start: date) -> list[dict]:
    """Per job over the last 7 days: run groups by final outcome, the success rate, and its newest
    session's state, result (None while it runs) and status ("running", or its state, or the result)."""
    jobs: dict[str, dict] = {}
    for d in sorted(daily, key=lambda d: d["day_utc"]):
        j = jobs.setdefault(
            d["job_uid"],
            {
                "job_uid": d["job_uid"],
                "runs": 0,
                "successes": 0,
                "warnings": 0,
                "failures": 0,
                "recovered": 0,
                "running": 0,
                "other": 0,
            },
        )
        j.update(job_name=d["job_name"], backup_server_name=d["backup_server_name"])
        if d["day_utc"] >= week_start:
            for k in ("runs", "successes", "warnings", "failures", "recovered", "running", "other"):
                j[k] += d[k]
    for j in jobs.values():
        j["success_rate"] = _rate(j["successes"] + j["warnings"], j["runs"] - j["running"])
        last = last_sessions.get(j["job_uid"], {})
        state, result = last.get("state"), last.get("result")
        j["last_state"] = state
        j["last_result"] = result if finished(state) else None
        j["last_status"] = status(state, result) if last else None
    return sorted(jobs.values(), key=lambda j: (j["job_name"] or "", j["job_uid"]))


def _backup_jobs(daily: list[dict], newest_runs: list[dict], week_start: date) -> list[dict]:
    """Per backup job (and backup server) over the last 7 days: logical runs by outcome, recovered,
    running, idle, other, the success rate over finished runs, and the outcome of its newest run in the
    window (last_outcome: "running" until its last attempt has finished, "idle" while it waits for new
    restore points to copy, else the Result as EM sent it)."""
    counts = ("runs", "attempts", "succeeded", "warnings", "failed", "recovered", "running", "idle", "other")
    jobs: dict[tuple, dict] = {}
    for d in sorted(daily, key=lambda d: d["day_utc"]):
        key = (d["backup_server_uid"], d["job_uid"])
        j = jobs.setdefault(key, {"job_uid": d["job_uid"], "backup_server_uid": d["backup_server_uid"]})
        j.update(job_name=d["job_name"], job_type=d["job_type"], backup_server_name=d["backup_server_name"])
        for k in counts:
            j.setdefault(k, 0)
            if d["day_utc"] >= week_start:
                j[k] += d[k]
    last = {(r["backup_server_uid"], r["job_uid"]): r for r in newest_runs}
    for key, j in jobs.items():
        j["success_rate"] = _rate(j["succeeded"] + j["warnings"], j["runs"] - j["running"] - j["idle"])
        run = last.get(key)
        j["last_outcome"] = run["outcome"] if run else None
        j["last_start_utc"] = run["start_utc"] if run else None
    return sorted(jobs.values(), key=lambda j: (j["job_name"] or "", j["job_uid"] or ""))


def _backup_tiles(s: dict, week_start: date) -> dict:
    machines, repos = s["backup_machines"], s["repositories"]
    week = [d for d in s["backup_daily"] if d["day_utc"] >= week_start]
    ok = sum(d["succeeded"] + d["warnings"] for d in week)
    return {
        "backup_machines": len(machines),
        "backup_machines_protected": sum(1 for v in machines if v["restore_points"]),
        "backup_agent_computers": sum(1 for v in machines if v["kind"] == "agent"),
        "backup_rpo_breaches": sum(v["rpo_breach"] for v in machines),
        "backup_rpo_warnings": sum(1 for v in machines if v["rpo_status"] == "warning"),
        "backup_success_rate_7d": _rate(ok, sum(d["runs"] - d["running"] - d["idle"] for d in week)),
        "repositories": len(repos),
        "repositories_low": sum(1 for r in repos if r["low_free"] == 1),
        "repositories_unknown_capacity": sum(1 for r in repos if r["capacity_bytes"] is None),
    }


def summary(eng: Engine, days: int = 14, failures: int = 25) -> dict:
    """Everything the default report shows, as one dict:

    generated_utc, last_load_utc, rpo_hours, backup_rpo_hours, repository_low_free_pct (settings, with
    the views' defaults), days (the `days` UTC dates shown, oldest first); tiles: replication
    (vms_protected, rpo_breaches, rpo_amber, success_rate_7d 0..1 or None, gb_last_24h = GB (2^30
    bytes) of TotalSize of tasks that finished in the last 24 h — the source size of the VMs processed,
    not bytes moved —, tasks_last_24h) and backup (backup_machines = VMs and agent computers,
    backup_machines_protected = those with a current restore point, backup_agent_computers,
    backup_rpo_breaches, backup_rpo_warnings, backup_success_rate_7d, repositories, repositories_low,
    repositories_unknown_capacity); jobs (replication jobs, last 7 days, with
    last_state/last_result/last_status); backup_jobs (backup jobs, last 7 days, runs by outcome and
    last_outcome); and one entry per READERS key (view rows as the views give them). Success rates
    divide by finished runs, those with an undocumented Result included. "Now" is the database's
    clock, as in the views.
    """
    with eng.connect() as conn:
        now = _instant(conn.execute(text("SELECT now_utc FROM v__clock")).scalar())
        assert now is not None, "v__clock gives the database's clock"
        today = now.date()
        w = Window(
            now=now,
            days=tuple(today - timedelta(days=days - 1 - i) for i in range(days)),
            week_start=today - timedelta(days=6),
            failures=failures,
        )
        settings = {k: v for k, v in conn.execute(select(etl_settings.c.key, etl_settings.c.value))}
        last_load = conn.execute(
            select(func.max(etl_runs.c.finished_at)).where(etl_runs.c.status == "succeeded")
        ).scalar()
        parts = {key: read(conn, w) for key, read in READERS.items()}
        last_sessions = _read_last_sessions(conn, w)
        source = _read_source_24h(conn, w)
    daily, vms = parts["daily"], parts["vms"]
    week = [d for d in daily if d["day_utc"] >= w.week_start]
    ok = sum(d["successes"] + d["warnings"] for d in week)
    return {
        "generated_utc": now,
        "last_load_utc": _instant(last_load),
        "rpo_hours": _setting(settings, "rpo_hours", 24.0),
        "backup_rpo_hours": _setting(settings, "backup_rpo_hours", 24.0),
        "repository_low_free_pct": _setting(settings, "repository_low_free_pct", 10.0),
        "days": list(w.days),
        "tiles": {
            "vms_protected": len(vms),
            "rpo_breaches": sum(v["rpo_breach"] for v in vms),
            "rpo_amber": sum(1 for v in vms if v["rpo_status"] == "amber"),
            "success_rate_7d": _rate(ok, sum(d["runs"] - d["running"] for d in week)),
            "gb_last_24h": round(source["bytes"] / GB, 1),
            "tasks_last_24h": source["tasks"],
            **_backup_tiles(parts, w.week_start),
        },
        "jobs": _jobs(daily, last_sessions, w.week_start),
        "backup_jobs": _backup_jobs(parts["backup_daily"], parts["backup_runs"], w.week_start),
        **parts,
    }


def _setting(settings: dict[str, str], key: str, default: float) -> float:
    """An etl_settings value as a number, `default` when the row is absent or not a number (as the
    views read it)."""
    try:
        return float(settings[key])
    except (KeyError, ValueError):
        return default


# ------------------------------------------------------------------ rendering
def _width(s: str) -> int:
    """Terminal columns `s` takes: wide East Asian characters count 2, combining marks 0."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s
    )


def _clip(s: str, width: int) -> str:
    if _width(s) <= width:
        return s
    out, used = [], 0
    for ch in s:
        w = _width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _cell(value, width: int = 60) -> str:
    """One value as table text: NULL "-", instants to the second with Z, floats rounded, text on one
    line and clipped to `width` columns."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1 else f"{value:,.1f}"
    # control characters (tabs, newlines, escapes) would break the columns: whitespace is collapsed,
    # the rest shown as U+FFFD
    s = " ".join(str(value).split())
    s = "".join("\ufffd" if unicodedata.category(ch) == "Cc" else ch for ch in s)
    return _clip(s, width)


_FIGURE = re.compile(r"-|-?[\d,]+(\.\d+)?%?")


def _numeric(value) -> bool:
    """Numbers, NULL and figures written as text ("91.7%") are right-aligned."""
    if value is None or isinstance(value, int | float):
        return True
    return isinstance(value, str) and _FIGURE.fullmatch(value) is not None


def table(
    rows: list[dict],
    columns: list[str] | None = None,
    indent: str = "",
    width: int | None = None,
    right: tuple[str, ...] = (),
    keep: tuple[str, ...] = ("status", "result", "last", "time (UTC)", "fixed"),
    first: tuple[str, ...] = ("reason",),
) -> str:
    """Rows as an aligned plain-text table (numbers, and the columns in `right`, right-aligned; NULL
    as "-"; wide characters counted as two columns). With `width`, text columns are clipped ("…")
    until every line fits in `width`: those in `first` (free text, read in full with --view) before
    the others, then the widest of the others; never those in `keep` (outcomes, which must read
    whole)."""
    columns = columns or (list(rows[0]) if rows else [])
    cells = [[_cell(r.get(c), 100 if c.endswith("uid") else 60) for c in columns] for r in rows]
    widths = [max([_width(c)] + [_width(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [c in right or (bool(rows) and all(_numeric(r.get(c)) for r in rows)) for c in columns]
    if width is not None:
        over = len(indent) + sum(widths) + 2 * (len(columns) - 1) - width
        while over > 0:
            shrinkable = [
                i
                for i, n in enumerate(numeric)
                if not n and columns[i] not in keep and widths[i] > max(8, _width(columns[i]))
            ]
            if not shrinkable:
                break
            i = max(shrinkable, key=lambda k: (columns[k] in first, widths[k]))
            widths[i] -= 1
            over -= 1
        cells = [[_clip(v, widths[i]) for i, v in enumerate(row)] for row in cells]

    def line(values):
        padded = [
            " " * (w - _width(v)) + v if n else v + " " * (w - _width(v))
            for v, w, n in zip(values, widths, numeric, strict=True)
        ]
        return (indent + "  ".join(padded)).rstrip()

    out = [line(columns), line(["-" * w for w in widths])] + [line(row) for row in cells]
    if not rows:
        out.append(indent + "(no rows)")
    return "\n".join(out)


def size_unit(largest_gb: float) -> tuple[str, float]:
    """The unit sizes up to `largest_gb` GB are shown in, and GB per that unit: GB, or TB from 10,000
    GB (both powers of two, as Veeam's consoles count). The terminal summary and the HTML page use it
    alike, so a figure reads the same in both."""
    return ("TB", GB_PER_TB) if largest_gb >= 10_000 else ("GB", 1)


def size_text(value: int | None, unit: str, per: float) -> str:
    """Bytes in `unit` (`per` GB each, from size_unit): whole numbers from 100 up, else one decimal;
    "?" for None."""
    if value is None:
        return "?"
    x = value / GB / per
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}"


def _when(value: datetime | None) -> str:
    """An instant to the minute, UTC, as the summary tables show it."""
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def age_text(hours: float | None) -> str:
    """An age in hours as the report shows it: "3.5 h" under 10 h, "18 h" under 3 days, else "12 d"."""
    if hours is None:
        return "never"
    return f"{hours:.1f} h" if hours < 10 else f"{hours:.0f} h" if hours < 72 else f"{hours / 24:.0f} d"


def _wrap(text: str, indent: str = "  ") -> list[str]:
    """A sentence of the summary, wrapped to WIDTH columns."""
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ")


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _backup_text(s: dict) -> list[str]:
    t = s["tiles"]
    computers = t["backup_agent_computers"]
    out = [
        "Backup",
        f"  Machines backed up: {t['backup_machines_protected']} of {t['backup_machines']} "
        f"({t['backup_machines'] - computers} VMs, {computers} agent computers)",
        f"  backup RPO breaches: {t['backup_rpo_breaches']}   success rate 7 days: "
        f"{_pct(t['backup_success_rate_7d'])}   repositories low on space: {t['repositories_low']} of "
        f"{t['repositories']}",
    ]
    if not (s["backup_machines"] or s["backup_daily"] or s["backup_failures"] or s["repositories"]):
        out.append("  No data yet: the warehouse holds no backup session, restore point or repository.")
    jobs = [
        {
            "backup job": j["job_name"],
            "server": j["backup_server_name"],
            "runs": j["runs"],
            "failed": j["failed"],
            "recovered": j["recovered"],
            "other": j["other"],
            "success": _pct(j["success_rate"]),
            "last": j["last_outcome"],
        }
        for j in s["backup_jobs"]
    ]
    out += [""]
    out += _wrap(
        "Backup jobs, last 7 days (a run = a scheduled session and its automatic retries; last = newest "
        "run, running until its last attempt ends, idle while a backup copy waits for new restore points):"
    )
    out += [
        table(
            jobs,
            ["backup job", "server", "runs", "failed", "recovered", "other", "success", "last"],
            "    ",
            WIDTH,
        ),
        "",
    ]
    machines = s["backup_machines"]
    attention = [
        {
            "status": v["rpo_status"],
            "machine": v["vm_display_name"] or v["vm_key"],
            "kind": v["kind"],
            "server": v["backup_server_name"],
            "newest point": age_text(v["point_age_hours"]) if v["newest_point_utc"] else "none",
            "last": v["last_result"],
            "reason": v["last_reason"],
        }
        for v in machines
        if v["rpo_status"] != "ok"
    ]
    out += _wrap(
        f"Machines (VMs and agent computers) outside the backup RPO of {s['backup_rpo_hours']:g} h or "
        f"needing attention ({len(attention)} of {len(machines)}; newest point: its age):"
    )
    out += [
        table(
            attention,
            ["status", "machine", "kind", "server", "newest point", "last", "reason"],
            "    ",
            WIDTH,
            right=("newest point",),
        ),
        "",
    ]
    repos = s["repositories"]
    largest = max((r["capacity_bytes"] or r["free_bytes"] or 0 for r in repos), default=0) / GB
    unit, per = size_unit(largest)
    rows = [
        {
            "repository": r["repository_name"],
            "server": r["backup_server_name"],
            f"capacity {unit}": "unknown"
            if r["capacity_bytes"] is None
            else size_text(r["capacity_bytes"], unit, per),
            f"free {unit}": size_text(r["free_bytes"], unit, per),
            "free %": "-" if r["free_pct"] is None else f"{r['free_pct']:.1f}%",
            f"7 d change {unit}": "-"
            if r["free_change_7d_bytes"] is None
            else ("+" if r["free_change_7d_bytes"] > 0 else "")
            + size_text(r["free_change_7d_bytes"], unit, per),
            "low": "LOW" if r["low_free"] == 1 else "",
        }
        for r in repos
    ]
    out += _wrap(
        f"Repositories, least free space first (low: below {s['repository_low_free_pct']:g} % free; "
        f"{unit} = 2^{30 if unit == 'GB' else 40} bytes):"
    )
    sizes = (f"capacity {unit}", f"free {unit}", "free %", f"7 d change {unit}")
    out += [table(rows, ["repository", "server", *sizes, "low"], "    ", WIDTH, right=sizes), ""]
    failures = [
        {
            "time (UTC)": _when(f["occurred_utc"]),
            "result": f["result"],
            "machine": f["vm_display_name"]
            or f["vm_key"]
            or ("(whole job)" if f["level"] == "session" else ""),
            "job": f["job_name"],
            "fixed": "retry" if f["recovered_by_retry"] else "later" if f["later_success"] else "",
            "reason": f["reason"],
        }
        for f in s["backup_failures"]
    ]
    out += _wrap(
        f"Newest backup failures and warnings ({len(failures)}; fixed: by a retry of the run, or by a "
        "later success; full reasons: --view v_backup_failures):"
    )
    out.append(table(failures, ["time (UTC)", "result", "machine", "job", "fixed", "reason"], "    ", WIDTH))
    return out


def summary_text(s: dict) -> str:
    """The summary as terminal text, every line at most WIDTH columns; sizes in the units the HTML
    page uses (size_unit)."""
    t = s["tiles"]
    load = s["last_load_utc"].strftime("%Y-%m-%d %H:%M:%SZ") if s["last_load_utc"] else "never"
    if t["tasks_last_24h"]:
        unit, per = size_unit(t["gb_last_24h"])
        source = (
            f"{size_text(round(t['gb_last_24h'] * GB), unit, per)} {unit} in {t['tasks_last_24h']:,} tasks"
        )
    else:
        source = "-"
    out = [
        f"Veeam backup & replication report, {s['generated_utc']:%Y-%m-%d %H:%M:%SZ}",
        f"  backup RPO {s['backup_rpo_hours']:g} h, replication RPO {s['rpo_hours']:g} h, last load {load}",
        "",
        *_backup_text(s),
        "",
        "Replication",
        f"  VMs protected: {t['vms_protected']}   RPO breaches: {t['rpo_breaches']}   "
        f"success rate 7 days: {_pct(t['success_rate_7d'])}",
        f"  source size of VMs processed, 24 h: {source} (EM's TotalSize; not bytes moved)",
    ]
    if not (s["vms"] or s["daily"] or s["failures"]):
        out.append(
            "  No data yet: the warehouse holds no replication session (load one with `veeam-etl run`)."
        )
    out += [""]
    out += _wrap(
        "Replication jobs, last 7 days (automatic retries folded in; last = newest session, running until "
        "it ends):"
    )
    jobs = [
        {
            "job": j["job_name"],
            "server": j["backup_server_name"],
            "runs": j["runs"],
            "ok": j["successes"],
            "warn": j["warnings"],
            "failed": j["failures"],
            "recovered": j["recovered"],
            "success": _pct(j["success_rate"]),
            "last": j["last_status"],
        }
        for j in s["jobs"]
    ]
    out += [
        table(
            jobs,
            ["job", "server", "runs", "ok", "warn", "failed", "recovered", "success", "last"],
            "    ",
            WIDTH,
        )
    ]
    out.append("")
    attention = [
        {
            "status": v["rpo_status"],
            "VM": v["vm_display_name"],
            "server": v["backup_server_name"],
            "last": v["last_result"],
            "last success": age_text(v["hours_since_success"])
            + (" ago" if v["hours_since_success"] is not None else ""),
            "at (UTC)": _when(v["last_success_utc"]),
        }
        for v in s["vms"]
        if v["rpo_status"] != "green"
    ]
    out += _wrap(f"Replicated VMs needing attention ({len(attention)} of {len(s['vms'])}):")
    out += [
        table(
            attention,
            ["status", "VM", "server", "last", "last success", "at (UTC)"],
            "    ",
            WIDTH,
            right=("last success",),
        ),
        "",
    ]
    failures = [
        {
            "time (UTC)": _when(f["occurred_utc"]),
            "result": f["result"],
            "VM": f["vm_display_name"],
            "job": f["job_name"],
            "fixed": "later" if f["later_success"] else "",
            "reason": f["reason"],
        }
        for f in s["failures"]
    ]
    out += _wrap(
        f"Newest replication failures and warnings ({len(failures)}; fixed: a later success; full "
        "reasons: --view v_replica_failures):"
    )
    out.append(table(failures, ["time (UTC)", "result", "VM", "job", "fixed", "reason"], "    ", WIDTH))
    return "\n".join(out)


def to_csv(rows: list[dict], columns: list[str] | None = None) -> str:
    columns = columns or (list(rows[0]) if rows else [])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([text_of(r.get(c)) for c in columns])
    return buf.getvalue()


def to_json(data) -> str:
    return json.dumps(data, indent=2, default=_json_default, ensure_ascii=False) + "\n"


def render(eng: Engine, fmt: str, view: str | None = None, limit: int | None = None) -> str:
    """The report as one string in `fmt` (table, csv, json or html).

    With `view`: that view's rows (at most `limit`) as a table, CSV or JSON, column names as in the
    view. Without: the summary as terminal tables, as JSON (every section of `summary()`) or as the
    HTML page; CSV needs a view (one table per invocation). Raises ConfigError for a bad format/view
    combination or a warehouse without schema, LoadError when the views cannot be read.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if view is not None and fmt == "html":
        raise ConfigError("--view applies to table, csv and json; the HTML page shows every view")
    if view is not None and view not in VIEWS:
        raise ConfigError(f"unknown view {view!r}: choose one of {', '.join(VIEWS)}")
    if view is None and fmt == "csv":
        raise ConfigError(
            f"--format csv writes one view per invocation: add --view with one of {', '.join(VIEWS)} "
            "(--format json without --view gives the whole summary)"
        )
    if db.current(eng) is None:
        raise ConfigError(
            f"warehouse {db.masked(str(eng.url))} has no schema yet: run `veeam-etl migrate` or a load first"
        )
    try:
        return _render(eng, fmt, view, limit)
    except SQLAlchemyError as exc:
        raise LoadError(
            f"reading the reporting views of {db.masked(str(eng.url))} failed "
            f"(run `veeam-etl migrate` to re-create them): {type(exc).__name__}: "
            f"{getattr(exc, 'orig', None) or exc}"
        ) from None


def write(eng: Engine, fmt: str, out: str | Path, view: str | None = None, limit: int | None = None) -> Path:
    """Render the report into file `out` (UTF-8); returns its absolute path."""
    body = render(eng, fmt, view, limit)
    path = Path(out).expanduser().resolve()
    try:
        path.write_text(body, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {path}: {exc.strerror}") from None
    return path


def _render(eng: Engine, fmt: str, view: str | None, limit: int | None) -> str:
    if view is not None:
        with eng.connect() as conn:
            columns = view_columns(conn, view)
            rows = read_view(conn, view, limit=limit)
        if fmt == "csv":
            return to_csv(rows, columns)
        if fmt == "json":
            return to_json(rows)
        return table(_display_rows(rows), columns) + "\n"
    s = summary(eng)
    if fmt == "html":
        from .report_html import page

        return page(s)
    if fmt == "json":
        return to_json(s)
    return summary_text(s) + "\n"
