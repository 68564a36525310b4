"""The backup panels of the HTML page, each a typed context worked out from the Summary: success per
job and day, the jobs, the protection age of every machine (VMs and agent computers), repository
capacity and the newest failures. templates/panels.html draws them (one `<%def>` per panel); nothing
here writes HTML but the charts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from . import charts
from .figures import GB, age_text, size_text, size_unit
from .panels import (
    MAX_CHIPS,
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
    outcome_badge,
    qualified,
    series_legend,
    when,
)
from .read import Row
from .summary import READERS, BackupJob, Summary

AGE_BUCKETS = (  # (label, upper bound in hours) of the machine protection-age chart
    ("<6h", 6),
    ("6–12h", 12),
    ("12–24h", 24),
    ("1–2d", 48),
    ("2–7d", 168),
    (">7d", float("inf")),
)
NO_POINT = "none"
BACKUP_STATUS = (("breach", charts.RED), ("warning", charts.AMBER), ("ok", charts.GREEN))


@dataclass(frozen=True)
class BackupSuccessPanel:
    days: int
    matrix: Chart
    legend: Legend


def _backup_cell_tip(d: Row | None) -> str:
    """Tooltip of one backup job-day cell: the rate in % and the runs behind it."""
    if d is None:
        return "no run"
    done = d["runs"] - d["running"] - d["idle"]
    running = f"; {d['running']} still running" if d["running"] else ""
    if d["idle"]:
        running += f"; {d['idle']} idle (a backup copy waiting for new restore points)"
    if done == 0:
        return f"no finished run{running}"
    recovered = f", {d['recovered']} recovered by a retry" if d["recovered"] else ""
    other = f", {d['other']} with another result" if d["other"] else ""
    return (
        f"{d['success_rate'] * 100:.1f}% success: {d['succeeded'] + d['warnings']} of {done} finished "
        f"runs succeeded ({d['failed']} failed{recovered}{other}){running}"
    )


def _job_label(j: BackupJob, jobs: list[BackupJob]) -> str:
    """A job's name, with its backup server when another job of the list has the same name."""
    name = j.job_name or j.job_uid or "(unknown job)"
    if sum(1 for o in jobs if o.job_name == j.job_name) > 1:
        name += f" ({j.backup_server_name or j.backup_server_uid})"
    return name


def backup_success(s: Summary) -> BackupSuccessPanel:
    """Backup success rate per job and day, as a matrix."""
    days = s.days
    labels = [d.strftime("%d %b") for d in days]
    by_job: dict[tuple, dict[date, Row]] = {}
    for d in s.backup_daily:
        by_job.setdefault((d["backup_server_uid"], d["job_uid"]), {})[d["day_utc"]] = d
    jobs = [j for j in s.backup_jobs if (j.backup_server_uid, j.job_uid) in by_job]
    rows = []
    for j in jobs:
        per_day = by_job[j.backup_server_uid, j.job_uid]
        rows.append(
            (
                _job_label(j, jobs),
                [(per_day.get(day) or {}).get("success_rate") for day in days],
                [_backup_cell_tip(per_day.get(day)) for day in days],
            )
        )

    def matrix(chart_id: str, width: int) -> str:
        return charts.heat_matrix(
            chart_id,
            "Backup success rate per job and day (%)",
            rows,
            labels,
            x_title="day the run started (UTC)",
            y_title="backup job",
            empty=empty(s, f"no backup job run in the last {len(days)} days", "backup"),
            width=width,
        )

    return BackupSuccessPanel(
        len(days), Chart.draw(matrix, "chart-backup-matrix"), list(charts.RATE_LEGEND) if rows else []
    )


def backup_jobs(s: Summary) -> JobsPanel:
    """Backup jobs over the last 7 days: runs by outcome and the newest run's outcome."""
    rows = [
        JobRow(
            j.job_name,
            j.backup_server_name,
            j.runs,
            j.failed,
            j.other,
            j.recovered,
            j.success_rate,
            outcome_badge(j.last_outcome),
        )
        for j in s.backup_jobs
    ]
    return JobsPanel(rows, empty(s, f"no backup job run in the last {len(s.days)} days", "backup"))


@dataclass(frozen=True)
class BackupMachinesPanel:
    rpo_hours: float
    chart: Chart
    legend: Legend
    chips: list[Chip]
    hidden: int  # machines needing attention not named
    machines: int
    view: str  # the view that lists every machine


def _age_bucket(hours: float | None) -> str:
    if hours is None:
        return NO_POINT
    return next(label for label, limit in AGE_BUCKETS if hours < limit)


def _age_text(hours: float | None) -> str:
    return "no point" if hours is None else age_text(hours)


def backup_machines(s: Summary) -> BackupMachinesPanel:
    """Machines (VMs and agent computers: v_vm_backup_status) by the age of their newest restore point,
    and those needing attention by name."""
    vms = s.backup_machines
    labels = [label for label, _ in AGE_BUCKETS] + [NO_POINT]
    counts = {(status, b): 0 for status, _ in BACKUP_STATUS for b in labels}
    for v in vms:
        key = (v["rpo_status"], _age_bucket(v["point_age_hours"]))
        if key in counts:
            counts[key] += 1
    series = [(status, [counts[status, b] for b in labels]) for status, _ in BACKUP_STATUS]
    colors = [color for _, color in BACKUP_STATUS]

    def bars(chart_id: str, width: int) -> str:
        return charts.stacked_bars(
            chart_id,
            "Machines by age of their newest restore point",
            labels,
            series,
            x_title="age of the newest restore point EM still lists (h = hours, d = days)",
            y_title="machines",
            unit="machines",
            empty=empty(s, "no machine has a backup task or a restore point", "backup"),
            width=width,
            colors=colors,
            counts=True,
        )

    shown = [v for v in vms if v["rpo_status"] != "ok"][:MAX_CHIPS]
    names = [v["vm_display_name"] or v["vm_key"] for v in shown]
    chips = []
    for v in shown:
        agent = v["kind"] == "agent"
        name = v["vm_display_name"] or v["vm_key"]
        tip = (
            f"{'agent computer' if agent else 'VM'} {name} on "
            f"{v['backup_server_name'] or v['backup_server_uid']}: newest restore point "
            f"{when(v['newest_point_utc'])} UTC ({_age_text(v['point_age_hours'])}), last result "
            f"{v['last_result'] or '-'}" + (f": {v['last_reason']}" if v["last_reason"] else "")
        )
        level = "red" if v["rpo_status"] == "breach" else "amber"
        shown_as = qualified(name, v["backup_server_name"], names)
        chips.append(Chip(level, tip, shown_as, _age_text(v["point_age_hours"]), agent))
    return BackupMachinesPanel(
        s.backup_rpo_hours,
        Chart.draw(bars, "chart-backup-age"),
        list(BACKUP_STATUS) if vms else [],
        chips,
        sum(1 for v in vms if v["rpo_status"] != "ok") - len(shown),
        len(vms),
        READERS["backup_machines"].view,
    )


@dataclass(frozen=True)
class RepositoryRow:
    """One repository: its name (with its backup server where names repeat), free space and capacity
    in the table's unit, free % (and whether that is low), and the change of free space over 7 days."""

    name: str
    free: str
    capacity: str
    free_pct: str
    low: bool
    change: str


@dataclass(frozen=True)
class RepositoriesPanel:
    chart: Chart
    legend: Legend
    rows: list[RepositoryRow]
    more: int  # repositories of known capacity without a line in the chart
    unit: str
    low_free_pct: float
    view: str  # the view that lists every repository
    empty: Empty


def _repository_label(r: Row, repos: list[Row]) -> str:
    """A repository's name, with its backup server when another repository has the same name (every
    server has a "Default Backup Repository")."""
    name = r["repository_name"] or r["repository_uid"]
    if sum(1 for o in repos if o["repository_name"] == r["repository_name"]) > 1:
        name += f" ({r['backup_server_name'] or r['backup_server_uid']})"
    return name


def repositories(s: Summary) -> RepositoriesPanel:
    """Free space per repository as a trend over the days shown, and every repository as last read."""
    repos = s.repositories
    days = s.days
    known = [r for r in repos if r["free_pct"] is not None][: len(charts.PALETTE)]
    history: dict[str, dict] = {}
    for seen in s.repository_space:
        history.setdefault(seen["repository_uid"], {})[seen["day_utc"]] = seen
    series = [
        (
            _repository_label(r, repos),
            [
                None
                if (h := history.get(r["repository_uid"], {}).get(day)) is None or h["free_pct"] is None
                else h["free_pct"] / 100
                for day in days
            ],
        )
        for r in known
    ]
    observed = [day for i, day in enumerate(days) if any(values[i] is not None for _, values in series)]
    # one day of observations (a first load) is no trend: a column of dots would only look like one
    trend_series = series if len(observed) > 1 else []
    nothing = empty(s, f"no repository of known capacity read in the last {len(days)} days", "backup")
    if len(observed) == 1:
        nothing = (
            "Not a trend yet",
            f"one reading per repository so far ({observed[0]:%d %b}): a line needs two days",
        )

    def trend(chart_id: str, width: int) -> str:
        return charts.line_chart(
            chart_id,
            "Free space per repository",
            [d.strftime("%d %b") for d in days],
            trend_series,
            x_title="day of the observation (UTC)",
            y_title="free space (% of capacity)",
            value_format=lambda v: f"{v * 100:.1f}% free",
            empty=nothing,
            width=width,
        )

    largest = max(((r["capacity_bytes"] or r["free_bytes"] or 0) for r in repos), default=0) / GB
    unit, per = size_unit(largest)
    rows = []
    for r in repos:
        change = r["free_change_7d_bytes"]
        rows.append(
            RepositoryRow(
                _repository_label(r, repos),
                size_text(r["free_bytes"], unit, per),
                "unknown" if r["capacity_bytes"] is None else size_text(r["capacity_bytes"], unit, per),
                "–" if r["free_pct"] is None else f"{r['free_pct']:.1f}%",
                r["low_free"] == 1,
                "–" if change is None else ("+" if change > 0 else "") + size_text(change, unit, per),
            )
        )
    return RepositoriesPanel(
        Chart.draw(trend, "chart-repo-trend"),
        series_legend([name for name, _ in series]) if trend_series else [],
        rows,
        len([r for r in repos if r["free_pct"] is not None]) - len(known),
        unit,
        s.repository_low_free_pct,
        READERS["repositories"].view,
        empty(s, "no repository loaded", "backup"),
    )


def backup_failures(s: Summary) -> FailuresPanel:
    """The newest backup tasks (and job sessions that failed before any task) that did not end Success."""
    rows = []
    for f in s.backup_failures:
        result = f["result"] or "None"
        rows.append(
            FailureRow(
                when(f["occurred_utc"]),
                badge(result, result),
                f["vm_display_name"] or f["vm_key"] or ("(whole job)" if f["level"] == "session" else ""),
                f["job_name"],
                f" (retry {f['attempt'] - 1})" if f["attempt"] and f["attempt"] > 1 else "",
                f["backup_server_name"],
                f["reason"],
                "recovered by retry"
                if f["recovered_by_retry"]
                else "later success"
                if f["later_success"]
                else "",
            )
        )
    return FailuresPanel(rows, s.backup_loaded, empty(s, "no backup session loaded", "backup"))
