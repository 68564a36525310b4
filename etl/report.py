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
GB = 2**30  # Veeam's consoles count GB in powers of two
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


def _read_transfer(conn: Connection, w: Window) -> list[dict]:
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
    "transfer": _read_transfer,
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


def table(rows: list[dict], columns: list[str] | None = None, indent: str = "") -> str:
    """Rows as an aligned plain-text table (numbers right-aligned; NULL as "-"; wide characters
    counted as two columns)."""
    columns = columns or (list(rows[0]) if rows else [])
    cells = [[_cell(r.get(c), 100 if c.endswith("uid") else 60) for c in columns] for r in rows]
    widths = [max([_width(c)] + [_width(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [bool(rows) and all(_numeric(r.get(c)) for r in rows) for c in columns]

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


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _gb(value: int | None) -> str | None:
    return None if value is None else f"{value / GB:,.1f}"


def _backup_text(s: dict) -> list[str]:
    t = s["tiles"]
    computers = t["backup_agent_computers"]
    out = [
        "Backup",
        f"  Machines backed up: {t['backup_machines_protected']} of {t['backup_machines']} "
        f"({t['backup_machines'] - computers} VMs, {computers} agent computers)   backup RPO breaches: "
        f"{t['backup_rpo_breaches']}   success rate 7 days: {_pct(t['backup_success_rate_7d'])}   "
        f"repositories low on space: {t['repositories_low']} of {t['repositories']}",
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
    out += [
        "",
        "  Backup jobs, last 7 days (a run = a scheduled session and its automatic retries; last = newest "
        "run, running until its last attempt ends, idle while a backup copy waits for new restore points):",
        table(
            jobs, ["backup job", "server", "runs", "failed", "recovered", "other", "success", "last"], "    "
        ),
        "",
    ]
    machines = s["backup_machines"]
    attention = [
        {
            "rpo_status": v["rpo_status"],
            "machine": v["vm_display_name"] or v["vm_key"],
            "kind": v["kind"],
            "server": v["backup_server_name"],
            "newest point": v["newest_point_utc"],
            "age h": v["point_age_hours"],
            "last result": v["last_result"],
            "last reason": v["last_reason"],
        }
        for v in machines
        if v["rpo_status"] != "ok"
    ]
    out.append(
        f"  Machines (VMs and agent computers) outside the backup RPO of {s['backup_rpo_hours']:g} h or "
        f"needing attention ({len(attention)} of {len(machines)}):"
    )
    out += [
        table(
            attention,
            [
                "rpo_status",
                "machine",
                "kind",
                "server",
                "newest point",
                "age h",
                "last result",
                "last reason",
            ],
            indent="    ",
        ),
        "",
    ]
    repos = [
        {
            "repository": r["repository_name"],
            "server": r["backup_server_name"],
            "capacity GB": _gb(r["capacity_bytes"]) or "unknown",
            "free GB": _gb(r["free_bytes"]),
            "free %": "-" if r["free_pct"] is None else f"{r['free_pct']:.1f}%",
            "7 d change GB": _gb(r["free_change_7d_bytes"]),
            "low": "LOW" if r["low_free"] == 1 else "",
        }
        for r in s["repositories"]
    ]
    out.append(
        f"  Repositories, least free space first (low: below {s['repository_low_free_pct']:g} % free):"
    )
    out += [
        table(
            repos,
            ["repository", "server", "capacity GB", "free GB", "free %", "7 d change GB", "low"],
            indent="    ",
        ),
        "",
    ]
    out.append(f"  Newest backup failures and warnings ({len(s['backup_failures'])}):")
    failures = [
        {
            "occurred_utc": f["occurred_utc"],
            "result": f["result"],
            "machine": f["vm_display_name"] or f["vm_key"],
            "job_name": f["job_name"],
            "recovered_by_retry": f["recovered_by_retry"],
            "reason": f["reason"],
        }
        for f in s["backup_failures"]
    ]
    out.append(
        table(
            failures,
            ["occurred_utc", "result", "machine", "job_name", "recovered_by_retry", "reason"],
            indent="    ",
        )
    )
    return out


def summary_text(s: dict) -> str:
    t = s["tiles"]
    load = s["last_load_utc"].strftime("%Y-%m-%d %H:%M:%SZ") if s["last_load_utc"] else "never"
    source = f"{t['gb_last_24h']:,.1f} GB in {t['tasks_last_24h']:,} tasks" if t["tasks_last_24h"] else "-"
    out = [
        f"Veeam backup & replication report, {s['generated_utc']:%Y-%m-%d %H:%M:%SZ} (backup RPO "
        f"{s['backup_rpo_hours']:g} h, replication RPO {s['rpo_hours']:g} h, last load {load})",
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
    out += [
        "",
        "  Replication jobs, last 7 days (automatic retries folded in; last = newest session, running until "
        "it ends):",
    ]
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
        table(jobs, ["job", "server", "runs", "ok", "warn", "failed", "recovered", "success", "last"], "    ")
    ]
    out.append("")
    attention = [v for v in s["vms"] if v["rpo_status"] != "green"]
    out.append(f"  Replicated VMs needing attention ({len(attention)} of {len(s['vms'])}):")
    out += [
        table(
            attention,
            [
                "rpo_status",
                "vm_display_name",
                "backup_server_name",
                "last_result",
                "last_success_utc",
                "hours_since_success",
            ],
            indent="    ",
        ),
        "",
    ]
    out.append(f"  Newest replication failures and warnings ({len(s['failures'])}):")
    out.append(
        table(
            s["failures"], ["occurred_utc", "result", "vm_display_name", "job_name", "reason"], indent="    "
        )
    )
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
