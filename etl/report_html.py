"""The HTML report: one self-contained, dark, wall-screen page built from `etl.report.summary()`: the
backup side (jobs, protection age of machines — VMs and agent computers —, repositories, failures) and
the replication side.

Inline CSS and inline SVG (etl.charts) only: no script, no external fetch, no web font; works
offline. Every string that comes from the warehouse (VM, job and server names, reasons) is escaped
here. The layout is a responsive grid: headline tiles that wrap, then two columns of sections
(`main` and `side`) from 1280 px wide and one column below, then full-width sections; it fits
without horizontal scrolling from 1024 px to 1920 px and beyond.

Adding a section: write `def _x_section(s: dict) -> str` returning `_section(key, title, note, body)`
from what `s` holds (add the query that reads it to `etl.report.READERS`, its rows arrive as
`s[key]`), and append `Section(key, area, _x_section)` to SECTIONS (area "main", "side" or "full").
A headline figure is one function in a row of TILES (one row of four per side) returning `_tile(...)`.
Every chart and tile must say `charts.NO_DATA` when it has nothing to show.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from . import charts
from .report import finished

MAX_CHIPS = 120  # red and amber VMs (and machines) shown by name
MAX_GREEN_CHIPS = 80  # green VMs are named only in estates up to this size
MAIN_WIDTH, SIDE_WIDTH = 820, 500  # viewBox widths of the charts of the main and side column
GB_PER_TB = 1024  # GB and TB count powers of two, as Veeam's consoles do
CSS = """
:root { color-scheme: dark; --bg:#0d1117; --panel:#161b22; --line:#30363d; --text:#e6edf3; --muted:#8b949e;
  --green:#3fb950; --amber:#d29922; --red:#f85149; --blue:#58a6ff; --gap:18px; }
* { box-sizing: border-box; }
html { font-size:clamp(14px, calc(7px + 0.6vw), 19px); }  /* text grows with the screen, as the charts do */
body { margin:0; background:var(--bg); color:var(--text);
  font-family:"Segoe UI","Helvetica Neue",Arial,"Liberation Sans","DejaVu Sans",sans-serif; font-size:1rem; }
header { display:flex; flex-wrap:wrap; align-items:baseline; justify-content:space-between; gap:4px 24px;
  padding:18px 28px 6px; }
h1 { margin:0; font-size:1.85rem; font-weight:600; letter-spacing:.3px; }
h1 span { color:var(--muted); font-weight:400; }
.meta { color:var(--muted); font-size:.93rem; }
main { padding:10px 28px 28px; display:flex; flex-direction:column; gap:var(--gap); }
.tiles { display:grid; grid-template-columns:repeat(auto-fit, minmax(210px, 1fr)); gap:var(--gap); }
.tile { background:var(--panel); border:1px solid var(--line); border-radius:10px; padding:14px 20px;
  border-top:5px solid var(--blue); min-width:0; }
.tile .value { font-size:clamp(34px, 2.9vw, 56px); font-weight:700; line-height:1.15;
  font-variant-numeric:tabular-nums; white-space:nowrap; }
.tile .value small { font-size:.45em; font-weight:600; margin-left:.25em; color:var(--muted); }
.tile .label { color:var(--muted); font-size:1rem; text-transform:uppercase; letter-spacing:.8px; }
.tile .note { color:var(--muted); font-size:.87rem; margin-top:2px; }
.tile.green { border-top-color:var(--green); } .tile.green .value { color:var(--green); }
.tile.amber { border-top-color:var(--amber); } .tile.amber .value { color:var(--amber); }
.tile.red { border-top-color:var(--red); } .tile.red .value { color:var(--red); }
.tile.empty { border-top-color:var(--line); } .tile.empty .value { color:var(--muted); }
.columns { display:grid; grid-template-columns:minmax(0, 1.55fr) minmax(0, 1fr); gap:var(--gap);
  align-items:start; }
.column { display:flex; flex-direction:column; gap:var(--gap); min-width:0; }
.full-width { display:none; }
@media (max-width: 1279px) { .columns { grid-template-columns:minmax(0, 1fr); }
  .full-width { display:block; } .in-column { display:none; } }
section { background:var(--panel); border:1px solid var(--line); border-radius:10px; padding:16px 20px;
  min-width:0; }
h2 { margin:0 0 10px; font-size:1.13rem; font-weight:600; color:var(--text); text-transform:uppercase;
  letter-spacing:.8px; }
h2 small { display:block; margin-top:3px; color:var(--muted); font-size:.87rem; font-weight:400;
  text-transform:none; letter-spacing:0; }
svg.chart { display:block; width:100%; height:auto; margin:6px 0; }
svg.chart-donut { width:14.5rem; flex:none; margin:0; }
svg text { fill:var(--muted); font-size:14px; font-family:inherit; }
svg text.chart-title { fill:var(--text); font-size:16px; font-weight:600; }
svg text.axis-title { fill:var(--muted); font-size:13px; font-style:italic; }
svg text.total { fill:var(--text); font-size:13px; } svg text.label { fill:var(--text); font-size:14px; }
svg text.cell-text { fill:#0d1117; font-size:13px; font-weight:700; }
svg text.donut-value { fill:var(--text); font-size:44px; font-weight:700; }
svg text.empty { fill:var(--text); font-size:20px; font-weight:600; }
svg text.empty-why { fill:var(--muted); font-size:14px; }
.legend { display:flex; flex-wrap:wrap; gap:6px 18px; margin:6px 0 4px; color:var(--muted); font-size:.87rem; }
.legend i { display:inline-block; width:12px; height:12px; border-radius:3px; margin-right:6px;
  vertical-align:-1px; }
.legend b { color:var(--text); font-weight:500; }
.rpo { display:flex; flex-wrap:wrap; gap:8px 22px; align-items:center; }
.counts div { font-size:1.13rem; margin:6px 0; white-space:nowrap; } .counts b { font-size:1.73rem; margin-right:8px; }
.chips { display:flex; flex-wrap:wrap; gap:6px; margin-top:12px; }
.chip { border-radius:6px; padding:4px 9px; font-size:.87rem; background:#0d1117; border:1px solid var(--line);
  border-left:5px solid var(--green); white-space:nowrap; max-width:100%; overflow:hidden;
  text-overflow:ellipsis; }
.chip.red { border-left-color:var(--red); background:#2d1214; } .chip.amber { border-left-color:var(--amber); }
.chip small { color:var(--muted); margin-left:6px; }
.chip i { color:var(--muted); font-style:normal; font-size:.8em; margin-right:5px; }
.more { color:var(--muted); font-size:.87rem; padding:4px; }
table { width:100%; border-collapse:collapse; font-size:.93rem; table-layout:fixed; }
th { text-align:left; color:var(--muted); font-weight:500; border-bottom:1px solid var(--line); padding:6px 8px;
  overflow-wrap:anywhere; }
td { border-bottom:1px solid #21262d; padding:6px 8px; vertical-align:top; overflow-wrap:anywhere; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
td.when { white-space:nowrap; font-variant-numeric:tabular-nums; }
td.reason { color:#c9d1d9; }
tr.resolved td { opacity:.55; }
.badge { display:inline-block; border-radius:4px; padding:1px 8px; font-size:.8rem; font-weight:700;
  color:#0d1117; background:var(--muted); max-width:100%; overflow-wrap:anywhere; vertical-align:top; }
.badge.failed { background:var(--red); } .badge.warning { background:var(--amber); }
.badge.success { background:var(--green); }
.badge.running { background:transparent; color:var(--blue); border:1px solid var(--blue); }
.badge.idle { background:transparent; color:var(--muted); border:1px dashed var(--muted); }
.badge.other { background:transparent; color:var(--text); border:1px solid var(--muted); }
.ok { color:var(--green); font-size:.8rem; }
.empty-note { color:var(--muted); padding:12px 0; }
.empty-note b { color:var(--text); }
footer { color:var(--muted); font-size:.8rem; padding:0 28px 20px; }
"""


def _e(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def _when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "never" if value is None else value.astimezone(UTC).strftime(fmt)


def _pct(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def _size_unit(gb: float) -> tuple[str, float]:
    """The unit sizes up to `gb` GB are shown in (GB, or TB from 10,000 GB) and GB per that unit."""
    return ("TB", GB_PER_TB) if gb >= 10_000 else ("GB", 1)


def _loaded(s: dict, side: str = "replication") -> bool:
    """Whether the warehouse holds anything of `side` ("replication": a replication session; "backup":
    a backup session, restore point or repository); else that side's parts say "No data yet"."""
    if side == "backup":
        return bool(s["backup_machines"] or s["backup_daily"] or s["backup_failures"] or s["repositories"])
    return bool(s["vms"] or s["daily"] or s["failures"])


def _empty(s: dict, why: str, side: str = "replication") -> tuple[str, str]:
    """What an empty chart says: "No data yet" when the warehouse holds nothing of its side, else that
    this period is empty."""
    return (charts.NO_DATA if not _loaded(s, side) else charts.NOTHING, why)


def _no_data(s: dict, why: str, side: str = "replication") -> str:
    return f'<div class="empty-note"><b>{_e(_empty(s, why, side)[0])}</b>: {_e(why)}</div>'


def _section(key: str, title: str, note: str, body: str) -> str:
    """One panel of the page: a heading, a note (units, time basis; trusted HTML, never warehouse
    text) and its body (HTML)."""
    small = f"<small>{note}</small>" if note else ""
    return f'<section id="{_e(key)}"><h2>{_e(title)}{small}</h2>{body}</section>'


def _side_chart(draw: Callable[[str, int], str], chart_id: str) -> str:
    """A chart of a side-column section drawn twice: narrow for the side column, and as wide as the
    main column's charts for the one-column layout under 1280 px (CSS shows one), so that its text
    keeps the size of the other charts' text at every width. draw(chart_id, viewBox width)."""
    return (
        f'<div class="in-column">{draw(chart_id, SIDE_WIDTH)}</div>'
        f'<div class="full-width">{draw(chart_id + "-full", MAIN_WIDTH)}</div>'
    )


def _legend(items: list[tuple[str, str]]) -> str:
    return (
        '<div class="legend">'
        + "".join(f'<span><i style="background:{color}"></i>{_e(n)}</span>' for n, color in items)
        + "</div>"
    )


def _series_legend(names: list[str]) -> list[tuple[str, str]]:
    return [(n, charts.PALETTE[i % len(charts.PALETTE)]) for i, n in enumerate(names)]


# ------------------------------------------------------------------ headline tiles
def _tile(key: str, label: str, value: str | None, unit: str, level: str, note: str) -> str:
    """A headline figure; with `value` None it reads "–" and `note` says why (starting "No data yet")."""
    shown = "–" if value is None else _e(value) + (f"<small>{_e(unit)}</small>" if unit else "")
    return (
        f'<div class="tile {"empty" if value is None else level}" id="tile-{key}">'
        f'<div class="label">{_e(label)}</div><div class="value">{shown}</div>'
        f'<div class="note">{_e(note)}</div></div>'
    )


def _tile_vms(s: dict) -> str:
    t = s["tiles"]
    if not t["vms_protected"]:
        return _tile(
            "vms", "VMs replicated", None, "", "blue", f"{charts.NO_DATA}: no replication task loaded"
        )
    return _tile(
        "vms", "VMs replicated", f"{t['vms_protected']:,}", "", "blue", f"{t['rpo_amber']:,} need attention"
    )


def _tile_breaches(s: dict) -> str:
    t = s["tiles"]
    if not t["vms_protected"]:
        return _tile("breaches", "Replica RPO breaches", None, "", "red", f"{charts.NO_DATA}: no VM to check")
    level = "red" if t["rpo_breaches"] else "green"
    note = f"VMs without a replication success within {s['rpo_hours']:g} h"
    return _tile("breaches", "Replica RPO breaches", f"{t['rpo_breaches']:,}", "", level, note)


def _tile_success(s: dict) -> str:
    rate = s["tiles"]["success_rate_7d"]
    if rate is None:
        why = f"{_empty(s, '')[0]}: no run finished in the last 7 days"
        return _tile("success", "Replication success 7 days", None, "", "blue", why)
    level = "green" if rate >= 0.99 else "amber" if rate >= 0.9 else "red"
    return _tile(
        "success",
        "Replication success 7 days",
        f"{rate * 100:.1f}",
        "%",
        level,
        "of finished runs, retries folded in",
    )


def _tile_source(s: dict) -> str:
    t = s["tiles"]
    label = "Source size 24 h"
    if not t["tasks_last_24h"]:
        return _tile("gb", label, None, "", "blue", f"{_empty(s, '')[0]}: no task ended in the last 24 h")
    unit, per = _size_unit(t["gb_last_24h"])
    value = t["gb_last_24h"] / per
    return _tile(
        "gb",
        label,
        f"{value:,.1f}" if value < 1000 else f"{value:,.0f}",
        unit,
        "blue",
        f"VM sizes of {t['tasks_last_24h']:,} tasks (EM TotalSize), not bytes moved",
    )


def _tile_backup_machines(s: dict) -> str:
    t = s["tiles"]
    label = "Machines backed up"
    if not t["backup_machines"]:
        return _tile(
            "backup-machines", label, None, "", "blue", f"{charts.NO_DATA}: no backup task or restore point"
        )
    computers = t["backup_agent_computers"]
    note = (
        f"with a restore point EM still lists, of {t['backup_machines']:,} seen "
        f"({t['backup_machines'] - computers:,} VMs, {computers:,} agent computers)"
    )
    return _tile("backup-machines", label, f"{t['backup_machines_protected']:,}", "", "blue", note)


def _tile_backup_breaches(s: dict) -> str:
    t = s["tiles"]
    label = "Backup RPO breaches"
    if not t["backup_machines"]:
        return _tile("backup-breaches", label, None, "", "red", f"{charts.NO_DATA}: no machine to check")
    level = "red" if t["backup_rpo_breaches"] else "green"
    note = f"machines without a restore point or a successful backup within {s['backup_rpo_hours']:g} h"
    return _tile("backup-breaches", label, f"{t['backup_rpo_breaches']:,}", "", level, note)


def _tile_backup_success(s: dict) -> str:
    rate = s["tiles"]["backup_success_rate_7d"]
    label = "Backup success 7 days"
    if rate is None:
        why = f"{_empty(s, '', 'backup')[0]}: no backup run finished in the last 7 days"
        return _tile("backup-success", label, None, "", "blue", why)
    level = "green" if rate >= 0.99 else "amber" if rate >= 0.9 else "red"
    note = "of finished runs, retries folded in"
    return _tile("backup-success", label, f"{rate * 100:.1f}", "%", level, note)


def _tile_repositories_low(s: dict) -> str:
    t = s["tiles"]
    label = "Repositories low on space"
    if not t["repositories"]:
        return _tile("repos-low", label, None, "", "blue", f"{charts.NO_DATA}: no repository loaded")
    unknown = t["repositories_unknown_capacity"]
    note = f"below {s['repository_low_free_pct']:g} % free, of {t['repositories']:,}" + (
        f"; {unknown:,} of unknown capacity" if unknown else ""
    )
    level = "red" if t["repositories_low"] else "green"
    return _tile("repos-low", label, f"{t['repositories_low']:,}", "", level, note)


# Headline figures, one row of four per side.
TILES: dict[str, list[Callable[[dict], str]]] = {
    "backup": [_tile_backup_machines, _tile_backup_breaches, _tile_backup_success, _tile_repositories_low],
    "replication": [_tile_vms, _tile_breaches, _tile_success, _tile_source],
}


# ------------------------------------------------------------------ sections
def _cell_tip(d: dict | None) -> str:
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


def _success_section(s: dict) -> str:
    days = s["days"]
    labels = [d.strftime("%d %b") for d in days]
    by_job: dict[str, dict] = {}
    for d in s["daily"]:
        by_job.setdefault(d["job_uid"], {})[d["day_utc"]] = d
    jobs = [j for j in s["jobs"] if j["job_uid"] in by_job]
    rates = [
        (
            j["job_name"] or j["job_uid"],
            [(by_job[j["job_uid"]].get(day) or {}).get("success_rate") for day in days],
        )
        for j in jobs
    ]
    ok: dict = {}
    done: dict = {}
    for d in s["daily"]:
        ok[d["day_utc"]] = ok.get(d["day_utc"], 0) + d["successes"] + d["warnings"]
        done[d["day_utc"]] = done.get(d["day_utc"], 0) + d["successes"] + d["warnings"] + d["failures"]
    overall = ("all jobs", [ok[day] / done[day] if done.get(day) else None for day in days])
    per_job = (
        rates if len(rates) <= len(charts.PALETTE) else []
    )  # more lines than colours: the matrix shows them
    low = min((v for _, vals in per_job + [overall] for v in vals if v is not None), default=1.0)
    y_min = 0.0 if low < 0.5 else 0.5 if low < 0.8 else 0.8
    why = f"no job run finished in the last {len(days)} days"
    line = charts.line_chart(
        "chart-success-rate",
        "Daily success rate" + (" per job" if len(rates) <= len(charts.PALETTE) else ", all jobs"),
        labels,
        per_job,
        overall=overall,
        x_title="day the run started (UTC)",
        y_title="success rate (% of finished runs)",
        y_min=y_min,
        y_step=0.25 if y_min == 0 else 0.1,
        empty=_empty(s, why),
    )
    matrix = charts.heat_matrix(
        "chart-success-matrix",
        "Success rate per job and day (%)",
        [
            (name, vals, [_cell_tip(by_job[j["job_uid"]].get(day)) for day in days])
            for (name, vals), j in zip(rates, jobs, strict=True)
        ],
        labels,
        x_title="day the run started (UTC)",
        y_title="job",
        empty=_empty(s, why),
    )
    legend = ""
    if any(v is not None for v in overall[1]):
        legend = _legend(_series_legend([n for n, _ in per_job]) + [("all jobs", charts.TEXT)])
    matrix_legend = _legend(list(charts.RATE_LEGEND)) if rates else ""
    return _section(
        "success",
        "Replication success",
        f"last {len(days)} days by UTC day; automatic retries folded in; % of finished run groups that "
        "ended Success or Warning",
        line + legend + matrix + matrix_legend,
    )


def _rpo_section(s: dict) -> str:
    vms = s["vms"]
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
    rpo = s["rpo_hours"]
    note = (
        f"RPO {rpo:g} h; amber: last success older than {rpo / 2:g} h or last result not Success; "
        "h = hours since the last success"
    )
    if not vms:
        return _section(
            "rpo",
            "Replica RPO status",
            note,
            f'<div class="rpo">{ring}</div>' + _no_data(s, "no VM has a task session"),
        )
    # every VM needing attention first; green ones only while they fit on a wall screen
    shown = [v for v in vms if v["rpo_status"] != "green"][:MAX_CHIPS]
    if len(vms) <= MAX_GREEN_CHIPS:
        shown += [v for v in vms if v["rpo_status"] == "green"]
    chips = []
    for v in shown:
        hours = v["hours_since_success"]
        since = "never" if hours is None else f"{hours:.0f} h" if hours >= 10 else f"{hours:.1f} h"
        now = "" if finished(v["last_task_state"]) else f"; newest task {v['last_task_status']}"
        tip = (
            f"{v['vm_display_name']} on {v['backup_server_name'] or v['backup_server_uid']}: last result "
            f"{v['last_result'] or '-'}, last success {_when(v['last_success_utc'])} UTC "
            f"({since} ago){now}"
        )
        chips.append(
            f'<span class="chip {_e(v["rpo_status"])}" title="{_e(tip)}">{_e(v["vm_display_name"])}'
            f"<small>{_e(since)}</small></span>"
        )
    if len(shown) < len(vms):
        chips.append(
            f'<span class="more">+{len(vms) - len(shown):,} more within RPO (v_vm_replica_status lists '
            "them all)</span>"
        )
    counts = (
        '<div class="counts">'
        f'<div><b style="color:var(--red)">{count["red"]:,}</b>VMs in breach</div>'
        f'<div><b style="color:var(--amber)">{count["amber"]:,}</b>need attention</div>'
        f'<div><b style="color:var(--green)">{count["green"]:,}</b>within RPO</div></div>'
    )
    return _section(
        "rpo",
        "Replica RPO status",
        note,
        f'<div class="rpo">{ring}{counts}</div><div class="chips" id="vm-chips">{"".join(chips)}</div>',
    )


def _source_size_section(s: dict) -> str:
    """Per backup server and day, EM's TotalSize of the tasks that ended: the source size of the VMs
    processed, not bytes moved (TotalSize is the VM's size; EM has no transferred-bytes figure). Read
    from v_replica_source_size_daily (`source_bytes`)."""
    days = s["days"]
    servers: dict[str, dict] = {}
    for r in s["transfer"]:
        name = r["backup_server_name"] or r["backup_server_uid"] or "(unknown server)"
        servers.setdefault(name, {})[r["day_utc"]] = r
    totals = [
        sum(per_day[d]["source_bytes"] for per_day in servers.values() if d in per_day) / 2**30 for d in days
    ]
    unit, per = _size_unit(max(totals, default=0))
    names = sorted(servers)
    series = [
        (n, [servers[n][d]["source_bytes"] / 2**30 / per if d in servers[n] else 0.0 for d in days])
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
            empty=_empty(s, f"no task ended in the last {len(days)} days"),
            width=width,
        )

    legend = _legend(_series_legend(names)) if any(totals) else ""
    return _section(
        "transfer",
        "Replication source size",
        f"sum of EM's TotalSize of the tasks that ended each UTC day, per backup server, in {unit} "
        f"(2<sup>{30 if unit == 'GB' else 40}</sup> bytes): the size of each VM replicated, not bytes moved",
        _side_chart(bars, "chart-transfer") + legend,
    )


def _badge(status: str | None, result: str | None) -> str:
    """A session outcome as a badge: green/amber/red for Success/Warning/Failed, outlined blue while
    the session runs (result None), outlined grey for any other value, shown as EM sent it."""
    if status is None:
        return "–"
    if result is None:
        cls = "running"
    else:
        cls = {"Success": "success", "Warning": "warning", "Failed": "failed"}.get(status, "other")
    # long values (WaitingRepository, values newer than this tool) may break between words only
    shown = re.sub(r"(?<=[a-z])(?=[A-Z])", "<wbr>", _e(status))
    return f'<span class="badge {cls}" title="{_e(status)}">{shown}</span>'


def _jobs_section(s: dict) -> str:
    rows = []
    for j in s["jobs"]:
        rows.append(
            f"<tr><td>{_e(j['job_name'])}</td><td>{_e(j['backup_server_name'])}</td>"
            f'<td class="num">{j["runs"]:,}</td><td class="num">{j["failures"]:,}</td>'
            f'<td class="num">{j["other"]:,}</td><td class="num">{j["recovered"]:,}</td>'
            f'<td class="num">{_pct(j["success_rate"])}</td><td>{_badge(j["last_status"], j["last_result"])}</td>'
            "</tr>"
        )
    if not rows:
        return _section(
            "jobs",
            "Replication jobs",
            "last 7 days",
            _no_data(s, f"no replication job run in the last {len(s['days'])} days"),
        )
    return _section(
        "jobs",
        "Replication jobs",
        "last 7 days; runs = run groups (retries folded in); other = finished with a result EM does not "
        "document (not a success); recovered = failed first, fixed by a retry; last = newest session, running "
        "until EM says it ended",
        '<table id="jobs-table"><colgroup><col><col style="width:17%"><col style="width:3.8em">'
        '<col style="width:4.2em"><col style="width:4.2em"><col style="width:7em"><col style="width:5.2em">'
        '<col style="width:8.4em"></colgroup><thead><tr><th>job</th><th>server</th><th class="num">runs</th>'
        '<th class="num">failed</th><th class="num">other</th><th class="num">recovered</th>'
        '<th class="num">success</th><th>last</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>",
    )


def _failures_section(s: dict) -> str:
    rows = []
    for f in s["failures"]:
        ok = '<span class="ok">✓ later success</span>' if f["later_success"] else ""
        rows.append(
            f'<tr class="{"resolved" if f["later_success"] else ""}">'
            f'<td class="when">{_when(f["occurred_utc"])}</td>'
            f"<td>{_badge(f['result'], f['result'])}</td>"
            f"<td>{_e(f['vm_display_name'])}</td><td>{_e(f['job_name'])}</td>"
            f'<td>{_e(f["backup_server_name"])}</td><td class="reason">{_e(f["reason"])}</td>'
            f"<td>{ok}</td></tr>"
        )
    if not rows:
        if not _loaded(s):
            return _section(
                "failures", "Replication failures and warnings", "", _no_data(s, "no task session loaded")
            )
        return _section(
            "failures",
            "Replication failures and warnings",
            "",
            '<div class="empty-note">No task ended Failed or Warning.</div>',
        )
    return _section(
        "failures",
        "Replication failures and warnings",
        f"newest {len(rows)} replication tasks that ended Failed or Warning, UTC",
        '<table id="failures-table"><colgroup><col style="width:9.6em"><col style="width:7.4em">'
        '<col style="width:11%"><col style="width:16%"><col style="width:13%"><col><col style="width:8.6em">'
        "</colgroup><thead><tr><th>time</th><th>result</th><th>VM</th><th>job</th><th>server</th>"
        f"<th>reason</th><th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>",
    )


# ------------------------------------------------------------------ backup sections
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


def _backup_cell_tip(d: dict | None) -> str:
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


def _job_label(j: dict, jobs: list[dict]) -> str:
    """A job's name, with its backup server when another job of the list has the same name."""
    name = j["job_name"] or j["job_uid"] or "(unknown job)"
    if sum(1 for o in jobs if o["job_name"] == j["job_name"]) > 1:
        name += f" ({j['backup_server_name'] or j['backup_server_uid']})"
    return name


def _backup_success_section(s: dict) -> str:
    days = s["days"]
    labels = [d.strftime("%d %b") for d in days]
    by_job: dict[tuple, dict] = {}
    for d in s["backup_daily"]:
        by_job.setdefault((d["backup_server_uid"], d["job_uid"]), {})[d["day_utc"]] = d
    jobs = [j for j in s["backup_jobs"] if (j["backup_server_uid"], j["job_uid"]) in by_job]
    rows = []
    for j in jobs:
        per_day = by_job[j["backup_server_uid"], j["job_uid"]]
        rows.append(
            (
                _job_label(j, jobs),
                [(per_day.get(day) or {}).get("success_rate") for day in days],
                [_backup_cell_tip(per_day.get(day)) for day in days],
            )
        )
    matrix = charts.heat_matrix(
        "chart-backup-matrix",
        "Backup success rate per job and day (%)",
        rows,
        labels,
        x_title="day the run started (UTC)",
        y_title="backup job",
        empty=_empty(s, f"no backup job run in the last {len(days)} days", "backup"),
    )
    legend = _legend(list(charts.RATE_LEGEND)) if rows else ""
    return _section(
        "backup-success",
        "Backup success",
        f"last {len(days)} days by UTC day; a run is a scheduled session and its automatic retries; % of "
        "finished runs that ended Success or Warning (a result EM did not document counts as not successful)",
        matrix + legend,
    )


def _outcome_badge(outcome: str | None) -> str:
    """A run's outcome ("running", "idle" or the Result as EM sent it) as a badge."""
    if outcome is None:
        return "–"
    if outcome == "idle":
        tip = "idle: a backup copy session waiting for new restore points to copy"
        return f'<span class="badge idle" title="{_e(tip)}">idle</span>'
    return _badge(outcome, None if outcome == "running" else outcome)


def _backup_jobs_section(s: dict) -> str:
    rows = []
    for j in s["backup_jobs"]:
        rows.append(
            f"<tr><td>{_e(j['job_name'])}</td><td>{_e(j['backup_server_name'])}</td>"
            f'<td class="num">{j["runs"]:,}</td><td class="num">{j["failed"]:,}</td>'
            f'<td class="num">{j["other"]:,}</td><td class="num">{j["recovered"]:,}</td>'
            f'<td class="num">{_pct(j["success_rate"])}</td><td>{_outcome_badge(j["last_outcome"])}</td></tr>'
        )
    if not rows:
        why = f"no backup job run in the last {len(s['days'])} days"
        return _section("backup-jobs", "Backup jobs", "last 7 days", _no_data(s, why, "backup"))
    return _section(
        "backup-jobs",
        "Backup jobs",
        "last 7 days; runs = scheduled sessions with their retries folded in; other = finished with a result "
        "EM does not document (not a success); recovered = failed first, fixed by a retry; last = newest run, "
        "running until its last attempt ends (idle: a backup copy waiting for new restore points)",
        '<table id="backup-jobs-table"><colgroup><col><col style="width:17%"><col style="width:3.8em">'
        '<col style="width:4.2em"><col style="width:4.2em"><col style="width:7em"><col style="width:5.2em">'
        '<col style="width:8.4em"></colgroup><thead><tr><th>job</th><th>server</th><th class="num">runs</th>'
        '<th class="num">failed</th><th class="num">other</th><th class="num">recovered</th>'
        '<th class="num">success</th><th>last</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>",
    )


def _age_bucket(hours: float | None) -> str:
    if hours is None:
        return NO_POINT
    return next(label for label, limit in AGE_BUCKETS if hours < limit)


def _age_text(hours: float | None) -> str:
    if hours is None:
        return "no point"
    return f"{hours:.1f} h" if hours < 10 else f"{hours:.0f} h" if hours < 72 else f"{hours / 24:.0f} d"


def _backup_machines_section(s: dict) -> str:
    """Machines (VMs and agent computers: v_vm_backup_status) by the age of their newest restore point,
    and those needing attention by name."""
    vms = s["backup_machines"]
    rpo = s["backup_rpo_hours"]
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
            empty=_empty(s, "no machine has a backup task or a restore point", "backup"),
            width=width,
            colors=colors,
            counts=True,
        )

    note = (
        f"VMs and agent computers; backup RPO {rpo:g} h; breach: neither a restore point nor a successful "
        f"backup within it; warning: older than {rpo / 2:g} h, no point for a successful backup, or the newest "
        "finished task did not end Success; restore points removed by retention are not counted"
    )
    legend = _legend([(status, color) for status, color in BACKUP_STATUS]) if vms else ""
    shown = [v for v in vms if v["rpo_status"] != "ok"][:MAX_CHIPS]
    chips = []
    for v in shown:
        what = "agent computer" if v["kind"] == "agent" else "VM"
        tip = (
            f"{what} {v['vm_display_name'] or v['vm_key']} on "
            f"{v['backup_server_name'] or v['backup_server_uid']}: newest restore point "
            f"{_when(v['newest_point_utc'])} UTC ({_age_text(v['point_age_hours'])}), last result "
            f"{v['last_result'] or '-'}" + (f": {v['last_reason']}" if v["last_reason"] else "")
        )
        level = "red" if v["rpo_status"] == "breach" else "amber"
        mark = '<i title="agent computer">agent</i>' if v["kind"] == "agent" else ""
        chips.append(
            f'<span class="chip {level}" title="{_e(tip)}">{mark}{_e(v["vm_display_name"] or v["vm_key"])}'
            f"<small>{_e(_age_text(v['point_age_hours']))}</small></span>"
        )
    hidden = sum(1 for v in vms if v["rpo_status"] != "ok") - len(shown)
    if hidden > 0:
        chips.append(f'<span class="more">+{hidden:,} more (v_vm_backup_status lists them all)</span>')
    body = _side_chart(bars, "chart-backup-age") + legend
    if chips:
        body += f'<div class="chips" id="backup-machine-chips">{"".join(chips)}</div>'
    elif vms:
        body += (
            f'<div class="empty-note">All {len(vms):,} machines have a restore point within the RPO.</div>'
        )
    return _section("backup-machines", "Machine backup protection", note, body)


def _size(value: int | None, unit: str, per: float) -> str:
    """Bytes in `unit` (GB or TB, `per` GB each): whole numbers from 100 up, else one decimal."""
    if value is None:
        return "?"
    x = value / 2**30 / per
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}"


def _repository_label(r: dict, repos: list[dict]) -> str:
    """A repository's name, with its backup server when another repository has the same name (every
    server has a "Default Backup Repository")."""
    name = r["repository_name"] or r["repository_uid"]
    if sum(1 for o in repos if o["repository_name"] == r["repository_name"]) > 1:
        name += f" ({r['backup_server_name'] or r['backup_server_uid']})"
    return name


def _repositories_section(s: dict) -> str:
    repos = s["repositories"]
    days = s["days"]
    low = s["repository_low_free_pct"]
    known = [r for r in repos if r["free_pct"] is not None][: len(charts.PALETTE)]
    history: dict[str, dict] = {}
    for h in s["repository_space"]:
        history.setdefault(h["repository_uid"], {})[h["day_utc"]] = h
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

    def trend(chart_id: str, width: int) -> str:
        return charts.line_chart(
            chart_id,
            "Free space per repository",
            [d.strftime("%d %b") for d in days],
            series,
            x_title="day of the observation (UTC)",
            y_title="free space (% of capacity)",
            value_format=lambda v: f"{v * 100:.1f}% free",
            empty=_empty(s, f"no repository of known capacity read in the last {len(days)} days", "backup"),
            width=width,
        )

    drawn = [name for name, values in series if any(v is not None for v in values)]
    legend = _legend(_series_legend([name for name, _ in series])) if drawn else ""
    if not repos:
        body = _side_chart(trend, "chart-repo-trend") + _no_data(s, "no repository loaded", "backup")
        return _section("repositories", "Repository capacity", "", body)
    largest = max((r["capacity_bytes"] or r["free_bytes"] or 0) for r in repos) / 2**30
    unit, per = _size_unit(largest)
    rows = []
    for r in repos:
        cap = "unknown" if r["capacity_bytes"] is None else _size(r["capacity_bytes"], unit, per)
        pct = "–" if r["free_pct"] is None else f"{r['free_pct']:.1f}%"
        if r["low_free"] == 1:
            pct = f'<span class="badge failed">{pct}</span>'
        change = r["free_change_7d_bytes"]
        change_text = "–" if change is None else ("+" if change > 0 else "") + _size(change, unit, per)
        rows.append(
            f"<tr><td>{_e(_repository_label(r, repos))}</td>"
            f'<td class="num">{_size(r["free_bytes"], unit, per)} / {_e(cap)}</td>'
            f'<td class="num">{pct}</td><td class="num">{_e(change_text)}</td></tr>'
        )
    table = (
        '<table id="repositories-table"><colgroup><col><col style="width:11em"><col style="width:5.4em">'
        '<col style="width:5.2em"></colgroup><thead><tr><th>repository</th>'
        f'<th class="num">free / capacity ({unit})</th><th class="num">free</th>'
        f'<th class="num">7 days ({unit})</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )
    note = (
        f"as last read, least free first; red: below {low:g} % free; capacity unknown where EM reports none "
        f"(no % then); 7 days: change of free space, {unit} = 2<sup>{30 if unit == 'GB' else 40}</sup> bytes"
    )
    more = len([r for r in repos if r["free_pct"] is not None]) - len(known)
    extra = (
        f'<div class="more">+{more:,} more repositories in v_repository_capacity</div>' if more > 0 else ""
    )
    return _section(
        "repositories",
        "Repository capacity",
        note,
        _side_chart(trend, "chart-repo-trend") + legend + extra + table,
    )


def _backup_failures_section(s: dict) -> str:
    rows = []
    for f in s["backup_failures"]:
        if f["recovered_by_retry"]:
            ok = '<span class="ok">✓ recovered by retry</span>'
        elif f["later_success"]:
            ok = '<span class="ok">✓ later success</span>'
        else:
            ok = ""
        what = f["vm_display_name"] or f["vm_key"] or ("(whole job)" if f["level"] == "session" else "")
        attempt = f" (retry {f['attempt'] - 1})" if f["attempt"] and f["attempt"] > 1 else ""
        rows.append(
            f'<tr class="{"resolved" if ok else ""}">'
            f'<td class="when">{_when(f["occurred_utc"])}</td>'
            f"<td>{_badge(f['result'] or 'None', f['result'] or 'None')}</td>"
            f"<td>{_e(what)}</td><td>{_e(f['job_name'])}{_e(attempt)}</td>"
            f'<td>{_e(f["backup_server_name"])}</td><td class="reason">{_e(f["reason"])}</td>'
            f"<td>{ok}</td></tr>"
        )
    title = "Backup failures and warnings"
    if not rows:
        if not _loaded(s, "backup"):
            return _section("backup-failures", title, "", _no_data(s, "no backup session loaded", "backup"))
        return _section(
            "backup-failures",
            title,
            "",
            '<div class="empty-note">No backup task or session ended Failed or Warning.</div>',
        )
    return _section(
        "backup-failures",
        title,
        f"newest {len(rows)} backup tasks (and job sessions that failed before any task) that did not end "
        "Success, UTC; recovered by retry = a later attempt of the same run fixed it",
        '<table id="backup-failures-table"><colgroup><col style="width:9.6em"><col style="width:8.2em">'
        '<col style="width:11%"><col style="width:14%"><col style="width:12%"><col><col style="width:8.6em">'
        "</colgroup><thead><tr><th>time</th><th>result</th><th>machine</th><th>job</th><th>server</th>"
        f"<th>reason</th><th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>",
    )


@dataclass(frozen=True)
class Section:
    """One panel of the page: its id, where it goes ("main" or "side" column, or "full" width below
    them) and the function that draws it from the summary."""

    key: str
    area: str
    draw: Callable[[dict], str]


SECTIONS: list[Section] = [
    Section("backup-success", "main", _backup_success_section),
    Section("backup-jobs", "main", _backup_jobs_section),
    Section("success", "main", _success_section),
    Section("jobs", "main", _jobs_section),
    Section("backup-machines", "side", _backup_machines_section),
    Section("repositories", "side", _repositories_section),
    Section("rpo", "side", _rpo_section),
    Section("transfer", "side", _source_size_section),
    Section("backup-failures", "full", _backup_failures_section),
    Section("failures", "full", _failures_section),
]


def page(s: dict) -> str:
    """The whole report as one HTML document."""
    generated = _when(s["generated_utc"], "%Y-%m-%d %H:%M:%S")
    drawn = {
        area: "\n".join(x.draw(s) for x in SECTIONS if x.area == area) for area in ("main", "side", "full")
    }
    load = _when(s["last_load_utc"]) + (" UTC" if s["last_load_utc"] else "")
    tiles = "\n".join(
        f'<div class="tiles" id="tiles-{side}">{"".join(tile(s) for tile in row)}</div>'
        for side, row in TILES.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="dark">
<title>Veeam backup and replication report</title>
<style>{CSS}</style>
</head>
<body>
<header><h1>Veeam backup &amp; replication <span>status</span></h1>
<div class="meta">generated {generated} UTC · last load {_e(load)} · backup RPO {s["backup_rpo_hours"]:g} h ·
replication RPO {s["rpo_hours"]:g} h</div>
</header>
<main>
{tiles}
<div class="columns"><div class="column main">
{drawn["main"]}
</div><div class="column side">
{drawn["side"]}
</div></div>
{drawn["full"]}
</main>
<footer>veeam-etl report · figures from the warehouse views v_backup_job_daily, v_backup_job_runs,
v_vm_backup_status, v_repository_capacity, v_repository_space_daily, v_backup_failures,
v_replica_job_daily, v_replica_job_runs, v_vm_replica_status, v_replica_source_size_daily and
v_replica_failures · GB = 2<sup>30</sup> bytes, TB = 2<sup>40</sup> bytes · source size = EM's TotalSize
of a task session, the size of the VM it processed (EM reports no transferred bytes)</footer>
</body>
</html>
"""
