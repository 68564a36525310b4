"""The report as terminal text: a view's rows as an aligned table (`table`, `view_text`) and the
summary as tables and sentences (`summary_text`), every line at most WIDTH columns, wide characters
counted as two. Reads a `Summary`; sizes and ages read as on the page (etl.report.figures).
"""

from __future__ import annotations

import re
import textwrap
import unicodedata
from datetime import UTC, datetime

from .figures import GB, age_text, size_text, size_unit
from .outcomes import NO_RESULT, RUNNING, status
from .read import Row
from .summary import Summary

WIDTH = 100  # columns the terminal summary fits in


def view_text(rows: list[Row], columns: list[str]) -> str:
    """A view's rows as the terminal shows them (`--view` without `--format`): every column, outcomes
    as `_display_rows` reads them, one line a row."""
    return table(_display_rows(rows), columns) + "\n"


def _display_rows(rows: list[Row]) -> list[Row]:
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


def _when(value: datetime | None) -> str:
    """An instant to the minute, UTC, as the summary tables show it."""
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _wrap(text: str, indent: str = "  ") -> list[str]:
    """A sentence of the summary, wrapped to WIDTH columns."""
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ")


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _backup_text(s: Summary) -> list[str]:
    t = s.tiles
    computers = t.backup_agent_computers
    out = [
        "Backup",
        f"  Machines backed up: {t.backup_machines_protected} of {t.backup_machines} "
        f"({t.backup_machines - computers} VMs, {computers} agent computers)",
        f"  backup RPO breaches: {t.backup_rpo_breaches}   success rate 7 days: "
        f"{_pct(t.backup_success_rate_7d)}   repositories low on space: {t.repositories_low} of "
        f"{t.repositories}",
    ]
    if not s.backup_loaded:
        out.append("  No data yet: the warehouse holds no backup session, restore point or repository.")
    jobs = [
        {
            "backup job": j.job_name,
            "server": j.backup_server_name,
            "runs": j.runs,
            "failed": j.failed,
            "recovered": j.recovered,
            "other": j.other,
            "success": _pct(j.success_rate),
            "last": j.last_outcome,
        }
        for j in s.backup_jobs
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
    machines = s.backup_machines
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
        f"Machines (VMs and agent computers) outside the backup RPO of {s.backup_rpo_hours:g} h or "
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
    repos = s.repositories
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
        f"Repositories, least free space first (low: below {s.repository_low_free_pct:g} % free; "
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
        for f in s.backup_failures
    ]
    out += _wrap(
        f"Newest backup failures and warnings ({len(failures)}; fixed: by a retry of the run, or by a "
        "later success; full reasons: --view v_backup_failures):"
    )
    out.append(table(failures, ["time (UTC)", "result", "machine", "job", "fixed", "reason"], "    ", WIDTH))
    return out


def summary_text(s: Summary) -> str:
    """The summary as terminal text, every line at most WIDTH columns; sizes in the units the HTML
    page uses (size_unit)."""
    t = s.tiles
    load = s.last_load_utc.strftime("%Y-%m-%d %H:%M:%SZ") if s.last_load_utc else "never"
    if t.tasks_last_24h:
        unit, per = size_unit(t.gb_last_24h)
        source = f"{size_text(round(t.gb_last_24h * GB), unit, per)} {unit} in {t.tasks_last_24h:,} tasks"
    else:
        source = "-"
    out = [
        f"Veeam backup & replication report, {s.generated_utc:%Y-%m-%d %H:%M:%SZ}",
        f"  backup RPO {s.backup_rpo_hours:g} h, replication RPO {s.rpo_hours:g} h, last load {load}",
        "",
        *_backup_text(s),
        "",
        "Replication",
        f"  VMs protected: {t.vms_protected}   RPO breaches: {t.rpo_breaches}   "
        f"success rate 7 days: {_pct(t.success_rate_7d)}",
        f"  source size of VMs processed, 24 h: {source} (EM's TotalSize; not bytes moved)",
    ]
    if not s.replication_loaded:
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
            "job": j.job_name,
            "server": j.backup_server_name,
            "runs": j.runs,
            "ok": j.successes,
            "warn": j.warnings,
            "failed": j.failures,
            "recovered": j.recovered,
            "success": _pct(j.success_rate),
            "last": j.last_status,
        }
        for j in s.jobs
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
        for v in s.vms
        if v["rpo_status"] != "green"
    ]
    out += _wrap(f"Replicated VMs needing attention ({len(attention)} of {len(s.vms)}):")
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
        for f in s.failures
    ]
    out += _wrap(
        f"Newest replication failures and warnings ({len(failures)}; fixed: a later success; full "
        "reasons: --view v_replica_failures):"
    )
    out.append(table(failures, ["time (UTC)", "result", "VM", "job", "fixed", "reason"], "    ", WIDTH))
    return "\n".join(out)
