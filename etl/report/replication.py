"""The replication panels of the HTML page, each a typed context worked out from the Summary: success
per job and day, the RPO status of every VM, the source size per day, the jobs and the newest failures.
templates/panels.html draws them (one `<%def>` per panel); nothing here writes HTML but the charts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from markupsafe import Markup

from . import charts
from .figures import GB, size_unit
from .markup import trusted
from .outcomes import finished
from .panels import (
    MAX_CHIPS,
    MAX_GREEN_CHIPS,
    Chart,
    Chip,
    Empty,
    FailureRow,
    FailuresPanel,
    JobRow,
    JobsPanel,
    Legend,
    badge,
    empty,
    qualified,
    series_legend,
    when,
)
from .read import Row
from .summary import READERS, Summary


@dataclass(frozen=True)
class SuccessPanel:
    days: int
    line: Chart
    legend: Legend
    matrix: Chart
    matrix_legend: Legend


def _cell_tip(d: Row | None) -> str:
    """Tooltip of one job-day cell: the rate in % and the runs behind it."""
    if d is None:
        return "no run"
    done = d["successes"] + d["warnings"] + d["failures"]
    # the view counts as `running` every run group without a Success/Warning/Failed result yet
    running = f"; {d['running']} without a Success/Warning/Failed result yet" if d["running"] else ""
    if done == 0:
        return f"no finished run{running}"
    recovered = f", {d['recovered']} recovered by a retry" if d["recovered"] else ""
    return (
        f"{d['success_rate'] * 100:.1f}% success: {d['successes'] + d['warnings']} of {done} finished "
        f"runs succeeded ({d['failures']} failed{recovered}){running}"
    )


def success(s: Summary) -> SuccessPanel:
    """Replication success per day: one line per job (the matrix when there are more jobs than colours)
    and all jobs together, and a job x day matrix of rates."""
    days = s.days
    labels = [d.strftime("%d %b") for d in days]
    by_job: dict[str, dict[date, Row]] = {}
    for d in s.daily:
        by_job.setdefault(d["job_uid"], {})[d["day_utc"]] = d
    jobs = [j for j in s.jobs if j.job_uid in by_job]
    rates = [
        (j.job_name or j.job_uid, [(by_job[j.job_uid].get(day) or {}).get("success_rate") for day in days])
        for j in jobs
    ]
    ok: dict[date, int] = {}
    done: dict[date, int] = {}
    for d in s.daily:
        ok[d["day_utc"]] = ok.get(d["day_utc"], 0) + d["successes"] + d["warnings"]
        done[d["day_utc"]] = done.get(d["day_utc"], 0) + d["successes"] + d["warnings"] + d["failures"]
    overall = ("all jobs", [ok[day] / done[day] if done.get(day) else None for day in days])
    per_job = rates if len(rates) <= len(charts.PALETTE) else []  # more lines than colours: the matrix
    low = min((v for _, vals in per_job + [overall] for v in vals if v is not None), default=1.0)
    y_min = 0.0 if low < 0.5 else 0.5 if low < 0.8 else 0.8
    why = empty(s, f"no job run finished in the last {len(days)} days")

    def line(chart_id: str, width: int) -> str:
        return charts.line_chart(
            chart_id,
            "Daily success rate" + (" per job" if len(rates) <= len(charts.PALETTE) else ", all jobs"),
            labels,
            per_job,
            overall=overall,
            x_title="day the run started (UTC)",
            y_title="success rate (% of finished runs)",
            y_min=y_min,
            y_step=0.25 if y_min == 0 else 0.1,
            empty=why,
            width=width,
        )

    def matrix(chart_id: str, width: int) -> str:
        return charts.heat_matrix(
            chart_id,
            "Success rate per job and day (%)",
            [
                (name, vals, [_cell_tip(by_job[j.job_uid].get(day)) for day in days])
                for (name, vals), j in zip(rates, jobs, strict=True)
            ],
            labels,
            x_title="day the run started (UTC)",
            y_title="job",
            empty=why,
            width=width,
        )

    legend: Legend = []
    if any(v is not None for v in overall[1]):
        legend = series_legend([n for n, _ in per_job]) + [("all jobs", charts.TEXT)]
    return SuccessPanel(
        len(days),
        Chart.draw(line, "chart-success-rate"),
        legend,
        Chart.draw(matrix, "chart-success-matrix"),
        list(charts.RATE_LEGEND) if rates else [],
    )


@dataclass(frozen=True)
class RpoPanel:
    rpo_hours: float
    ring: Markup
    red: int
    amber: int
    green: int
    chips: list[Chip]
    more: int  # VMs within RPO not named
    view: str  # the view that lists every VM
    empty: Empty | None  # no VM at all: what the panel says


def rpo(s: Summary) -> RpoPanel:
    """Replicated VMs by RPO status: a donut, the counts, and every VM needing attention by name (green
    ones too while they fit on a wall screen)."""
    vms = s.vms
    count = {c: sum(1 for v in vms if v["rpo_status"] == c) for c in ("red", "amber", "green")}
    ring = charts.donut(
        "chart-rpo",
        "VMs by RPO status",
        [
            ("breach", count["red"], charts.RED),
            ("attention", count["amber"], charts.AMBER),
            ("within RPO", count["green"], charts.GREEN),
        ],
        f"{len(vms):,}",
        "VMs",
        unit="VMs",
    )
    shown = [v for v in vms if v["rpo_status"] != "green"][:MAX_CHIPS]
    if len(vms) <= MAX_GREEN_CHIPS:
        shown += [v for v in vms if v["rpo_status"] == "green"]
    names = [v["vm_display_name"] for v in shown]
    chips = []
    for v in shown:
        hours = v["hours_since_success"]
        since = "never" if hours is None else f"{hours:.0f} h" if hours >= 10 else f"{hours:.1f} h"
        running = "" if finished(v["last_task_state"]) else f"; newest task {v['last_task_status']}"
        tip = (
            f"{v['vm_display_name']} on {v['backup_server_name'] or v['backup_server_uid']}: last result "
            f"{v['last_result'] or '-'}, last success {when(v['last_success_utc'])} UTC "
            f"({since} ago){running}"
        )
        name = qualified(v["vm_display_name"], v["backup_server_name"], names)
        chips.append(Chip(v["rpo_status"], tip, name, since))
    return RpoPanel(
        s.rpo_hours,
        trusted(ring),
        count["red"],
        count["amber"],
        count["green"],
        chips,
        len(vms) - len(shown),
        READERS["vms"].view,
        None if vms else empty(s, "no VM has a task session"),
    )


@dataclass(frozen=True)
class SourceSizePanel:
    unit: str
    chart: Chart
    legend: Legend


def source_size(s: Summary) -> SourceSizePanel:
    """Per backup server and day, EM's TotalSize of the tasks that ended: the source size of the VMs
    processed, not bytes moved (TotalSize is the VM's size; EM has no transferred-bytes figure). Read
    from v_replica_source_size_daily (`source_bytes`)."""
    days = s.days
    servers: dict[str, dict] = {}
    for r in s.source_size:
        name = r["backup_server_name"] or r["backup_server_uid"] or "(unknown server)"
        servers.setdefault(name, {})[r["day_utc"]] = r
    totals = [
        sum(per_day[d]["source_bytes"] for per_day in servers.values() if d in per_day) / GB for d in days
    ]
    unit, per = size_unit(max(totals, default=0))
    names = sorted(servers)
    series = [
        (n, [servers[n][d]["source_bytes"] / GB / per if d in servers[n] else 0.0 for d in days])
        for n in names
    ]
    tips = [
        [f"{servers[n][d]['tasks']:,} tasks ended" if d in servers[n] else "" for d in days] for n in names
    ]

    def bars(chart_id: str, width: int) -> str:
        return charts.stacked_bars(
            chart_id,
            "Source size of VMs replicated per day",
            [d.strftime("%d %b") for d in days],
            series,
            x_title="day the tasks ended (UTC)",
            y_title=f"source size ({unit})",
            unit=unit,
            tips=tips,
            empty=empty(s, f"no task ended in the last {len(days)} days"),
            width=width,
        )

    legend = series_legend(names) if any(totals) else []
    return SourceSizePanel(unit, Chart.draw(bars, "chart-source-size"), legend)


def jobs(s: Summary) -> JobsPanel:
    """Replication jobs over the last 7 days: run groups by outcome and the newest session's outcome."""
    rows = [
        JobRow(
            j.job_name,
            j.backup_server_name,
            j.runs,
            j.failures,
            j.other,
            j.recovered,
            j.success_rate,
            badge(j.last_status, j.last_result),
        )
        for j in s.jobs
    ]
    return JobsPanel(rows, empty(s, f"no replication job run in the last {len(s.days)} days"))


def failures(s: Summary) -> FailuresPanel:
    """The newest replication tasks that ended Failed or Warning."""
    rows = [
        FailureRow(
            when(f["occurred_utc"]),
            badge(f["result"], f["result"]),
            f["vm_display_name"],
            f["job_name"],
            "",
            f["backup_server_name"],
            f["reason"],
            "later success" if f["later_success"] else "",
        )
        for f in s.failures
    ]
    return FailuresPanel(rows, s.replication_loaded, empty(s, "no task session loaded"))
