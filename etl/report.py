"""`veeam-etl report`: read the reporting views (sql/) and render them as terminal tables, CSV, JSON,
or one self-contained HTML page (etl.report_html, charts from etl.charts).

Reads only the public views, the base tables for one figure, and etl_settings; never writes.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Connection, Date, Engine, bindparam, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from . import db
from .errors import ConfigError, LoadError
from .schema import UTCDateTime, etl_runs, etl_settings, replica_task_sessions

# Public views and the order their rows are read in (views themselves keep no order).
VIEWS: dict[str, str] = {
    "v_replica_job_runs": "creation_time_utc DESC, session_uid",
    "v_replica_job_daily": "day_utc DESC, job_name, job_uid",
    "v_vm_replica_status": "rpo_breach DESC, backup_server_name, vm_display_name",
    "v_replica_transfer_daily": "day_utc DESC, backup_server_name, backup_server_uid",
    "v_replica_failures": "occurred_utc DESC, task_uid",
}
FORMATS = ("table", "csv", "json", "html")
GB = 2**30  # Veeam's consoles count GB in powers of two
STATUS_ORDER = {"red": 0, "amber": 1, "green": 2}


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


def summary(eng: Engine, days: int = 14, failures: int = 25) -> dict:
    """Everything the default report shows: headline tiles, per-job rates, VM RPO status, transfer
    per day, and the newest failures. "Now" is the database's clock, as in the views."""
    with eng.connect() as conn:
        now = _instant(conn.execute(text("SELECT now_utc FROM v__clock")).scalar())
        today = now.date()
        first_day = today - timedelta(days=days - 1)
        rpo = conn.execute(select(etl_settings.c.value).where(etl_settings.c.key == "rpo_hours")).scalar()
        daily = read_view(conn, "v_replica_job_daily", "day_utc >= :first_day", first_day=first_day)
        transfer = read_view(conn, "v_replica_transfer_daily", "day_utc >= :first_day", first_day=first_day)
        vms = read_view(conn, "v_vm_replica_status")
        newest_failures = read_view(conn, "v_replica_failures", limit=failures)
        t = replica_task_sessions.c
        bytes_24h = conn.execute(
            select(func.coalesce(func.sum(t.total_size), 0)).where(
                t.end_time_utc >= now - timedelta(hours=24), t.result.in_(("Success", "Warning", "Failed"))
            )
        ).scalar()
        last_load = conn.execute(
            select(func.max(etl_runs.c.finished_at)).where(etl_runs.c.status == "succeeded")
        ).scalar()
    never = float("inf")
    vms.sort(
        key=lambda v: (
            STATUS_ORDER.get(v["rpo_status"], 3),  # red first, the longest without success first
            -(never if v["hours_since_success"] is None else v["hours_since_success"]),
            v["vm_display_name"] or "",
        )
    )
    week_start = today - timedelta(days=6)
    week = [d for d in daily if d["day_utc"] >= week_start]
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
            },
        )
        j.update(
            job_name=d["job_name"], backup_server_name=d["backup_server_name"], last_result=d["final_result"]
        )
        if d["day_utc"] >= week_start:
            for k in ("runs", "successes", "warnings", "failures", "recovered", "running"):
                j[k] += d[k]
    for j in jobs.values():
        j["success_rate"] = _rate(
            j["successes"] + j["warnings"], j["successes"] + j["warnings"] + j["failures"]
        )
    ok = sum(d["successes"] + d["warnings"] for d in week)
    return {
        "generated_utc": now,
        "last_load_utc": _instant(last_load),
        "rpo_hours": float(rpo) if rpo else 24.0,
        "days": [first_day + timedelta(days=i) for i in range(days)],
        "tiles": {
            "vms_protected": len(vms),
            "rpo_breaches": sum(v["rpo_breach"] for v in vms),
            "rpo_amber": sum(1 for v in vms if v["rpo_status"] == "amber"),
            "success_rate_7d": _rate(ok, ok + sum(d["failures"] for d in week)),
            "gb_last_24h": round(int(bytes_24h) / GB, 1),
        },
        "jobs": sorted(jobs.values(), key=lambda j: (j["job_name"] or "", j["job_uid"])),
        "daily": daily,
        "transfer": transfer,
        "vms": vms,
        "failures": newest_failures,
    }


# ------------------------------------------------------------------ rendering
def _cell(value, width: int = 60) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1 else f"{value:,.1f}"
    s = " ".join(str(value).split())
    return s if len(s) <= width else s[: width - 1] + "…"


def table(rows: list[dict], columns: list[str] | None = None, indent: str = "") -> str:
    """Rows as an aligned plain-text table (numbers right-aligned)."""
    columns = columns or (list(rows[0]) if rows else [])
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [
        bool(rows) and all(isinstance(r.get(c), int | float) or r.get(c) is None for r in rows)
        for c in columns
    ]

    def line(values):
        return (
            indent
            + "  ".join(
                v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True)
            ).rstrip()
        )

    out = [line(columns), line(["-" * w for w in widths])] + [line(row) for row in cells]
    if not rows:
        out.append(indent + "(no rows)")
    return "\n".join(out)


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def summary_text(s: dict) -> str:
    t = s["tiles"]
    load = s["last_load_utc"].strftime("%Y-%m-%d %H:%M:%SZ") if s["last_load_utc"] else "never"
    out = [
        f"Veeam replication report, {s['generated_utc']:%Y-%m-%d %H:%M:%SZ} (RPO {s['rpo_hours']:g} h, "
        f"last load {load})",
        f"  VMs protected: {t['vms_protected']}   RPO breaches: {t['rpo_breaches']}   "
        f"success rate 7 days: {_pct(t['success_rate_7d'])}   GB transferred 24 h: {t['gb_last_24h']:,.1f}",
        "",
        "Jobs, last 7 days (automatic retries folded in):",
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
            "last": j["last_result"],
        }
        for j in s["jobs"]
    ]
    out += [table(jobs, indent="  "), ""]
    attention = [v for v in s["vms"] if v["rpo_status"] != "green"]
    out.append(f"VMs needing attention ({len(attention)} of {len(s['vms'])}):")
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
            indent="  ",
        ),
        "",
    ]
    out.append(f"Newest failures and warnings ({len(s['failures'])}):")
    out.append(
        table(s["failures"], ["occurred_utc", "result", "vm_display_name", "job_name", "reason"], indent="  ")
    )
    return "\n".join(out)


def summary_rows(s: dict) -> list[dict]:
    """The headline figures as metric/value rows (the CSV summary)."""
    rows = [
        {"metric": "generated_utc", "value": text_of(s["generated_utc"])},
        {"metric": "rpo_hours", "value": s["rpo_hours"]},
    ]
    rows += [{"metric": k, "value": "" if v is None else v} for k, v in s["tiles"].items()]
    return rows


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
    """The report as one string in `fmt` (table, csv, json or html); `view` picks one view."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if view is not None and fmt == "html":
        raise ConfigError("--view applies to table, csv and json; the HTML page shows every view")
    if view is not None and view not in VIEWS:
        raise ConfigError(f"unknown view {view!r}: choose one of {', '.join(VIEWS)}")
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
        return table(rows, columns) + "\n"
    s = summary(eng)
    if fmt == "html":
        from .report_html import page

        return page(s)
    if fmt == "csv":
        return to_csv(summary_rows(s), ["metric", "value"])
    if fmt == "json":
        return to_json(s)
    return summary_text(s) + "\n"
