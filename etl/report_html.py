"""The HTML report: one self-contained, dark, wall-screen page built from `etl.report.summary()`.

Inline CSS and inline SVG (etl.charts) only: no script, no external fetch, works offline. Every
string that comes from the warehouse (VM, job and server names, reasons) is escaped here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from . import charts

MAX_CHIPS = 120  # red and amber VMs shown by name
MAX_GREEN_CHIPS = 80  # green VMs are named only in estates up to this size
CSS = """
:root { color-scheme: dark; --bg:#0d1117; --panel:#161b22; --line:#30363d; --text:#e6edf3; --muted:#8b949e;
  --green:#3fb950; --amber:#d29922; --red:#f85149; --blue:#58a6ff; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--text);
  font-family:"Segoe UI","Helvetica Neue",Arial,"Liberation Sans","DejaVu Sans",sans-serif; font-size:15px; }
header { display:flex; align-items:baseline; justify-content:space-between; padding:18px 28px 6px; }
h1 { margin:0; font-size:28px; font-weight:600; letter-spacing:.3px; }
h1 span { color:var(--muted); font-weight:400; }
.meta { color:var(--muted); font-size:14px; }
main { padding:10px 28px 28px; display:grid; gap:18px; grid-template-columns: minmax(0,2fr) minmax(0,1fr); }
.tiles { grid-column:1 / -1; display:grid; grid-template-columns:repeat(4, minmax(0,1fr)); gap:18px; }
.tile { background:var(--panel); border:1px solid var(--line); border-radius:10px; padding:16px 22px;
  border-top:5px solid var(--blue); }
.tile .value { font-size:56px; font-weight:700; line-height:1.1; font-variant-numeric:tabular-nums; }
.tile .label { color:var(--muted); font-size:16px; text-transform:uppercase; letter-spacing:.8px; }
.tile .note { color:var(--muted); font-size:13px; margin-top:2px; }
.tile.green { border-top-color:var(--green); } .tile.green .value { color:var(--green); }
.tile.amber { border-top-color:var(--amber); } .tile.amber .value { color:var(--amber); }
.tile.red { border-top-color:var(--red); } .tile.red .value { color:var(--red); }
section { background:var(--panel); border:1px solid var(--line); border-radius:10px; padding:16px 20px;
  min-width:0; }
section.wide { grid-column:1 / -1; }
h2 { margin:0 0 10px; font-size:17px; font-weight:600; color:var(--text); text-transform:uppercase;
  letter-spacing:.8px; }
h2 small { color:var(--muted); font-weight:400; text-transform:none; letter-spacing:0; }
svg.chart { width:100%; height:auto; display:block; }
svg text { fill:var(--muted); font-size:13px; font-family:inherit; }
svg text.total { fill:var(--text); font-size:12px; } svg text.label { fill:var(--text); font-size:14px; }
svg text.cell-text { fill:#0d1117; font-size:12px; font-weight:700; }
svg text.donut-value { fill:var(--text); font-size:44px; font-weight:700; }
svg text.empty { fill:var(--muted); font-size:18px; }
.legend { display:flex; flex-wrap:wrap; gap:6px 18px; margin:8px 0 4px; color:var(--muted); font-size:13px; }
.legend i { display:inline-block; width:12px; height:12px; border-radius:3px; margin-right:6px;
  vertical-align:-1px; }
.rpo { display:flex; gap:18px; align-items:center; }
.rpo svg { width:200px; flex:none; }
.counts div { font-size:18px; margin:6px 0; } .counts b { font-size:26px; margin-right:8px; }
.chips { display:flex; flex-wrap:wrap; gap:6px; margin-top:12px; }
.chip { border-radius:6px; padding:4px 9px; font-size:13px; background:#0d1117; border:1px solid var(--line);
  border-left:5px solid var(--green); white-space:nowrap; }
.chip.red { border-left-color:var(--red); background:#2d1214; } .chip.amber { border-left-color:var(--amber); }
.chip small { color:var(--muted); margin-left:6px; }
.more { color:var(--muted); font-size:13px; padding:4px; }
table { width:100%; border-collapse:collapse; font-size:14px; }
th { text-align:left; color:var(--muted); font-weight:500; border-bottom:1px solid var(--line); padding:6px 8px; }
td { border-bottom:1px solid #21262d; padding:6px 8px; vertical-align:top; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
td.reason { color:#c9d1d9; max-width:560px; }
tr.resolved td { opacity:.55; }
.badge { display:inline-block; border-radius:4px; padding:1px 8px; font-size:12px; font-weight:700;
  color:#0d1117; }
.badge.Failed { background:var(--red); } .badge.Warning { background:var(--amber); }
.badge.Success { background:var(--green); } .badge.None { background:var(--muted); }
.ok { color:var(--green); font-size:12px; white-space:nowrap; }
.empty-note { color:var(--muted); padding:12px 0; }
footer { color:var(--muted); font-size:12px; padding:0 28px 20px; }
"""


def _e(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def _when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "never" if value is None else value.astimezone(UTC).strftime(fmt)


def _pct(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def _tile(label: str, value: str, level: str, note: str, key: str) -> str:
    return (
        f'<div class="tile {level}" id="tile-{key}"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div><div class="note">{_e(note)}</div></div>'
    )


def _tiles(s: dict) -> str:
    t = s["tiles"]
    rate = t["success_rate_7d"]
    rate_level = "blue" if rate is None else "green" if rate >= 0.99 else "amber" if rate >= 0.9 else "red"
    return (
        '<div class="tiles">'
        + "".join(
            [
                _tile(
                    "VMs protected",
                    f"{t['vms_protected']:,}",
                    "blue",
                    f"{t['rpo_amber']} need attention",
                    "vms",
                ),
                _tile(
                    "RPO breaches",
                    f"{t['rpo_breaches']:,}",
                    "red" if t["rpo_breaches"] else "green",
                    f"no success within {s['rpo_hours']:g} h",
                    "breaches",
                ),
                _tile(
                    "Success rate 7 days", _pct(rate), rate_level, "run groups, retries folded in", "success"
                ),
                _tile(
                    "GB transferred 24 h", f"{t['gb_last_24h']:,.1f}", "blue", "finished task sessions", "gb"
                ),
            ]
        )
        + "</div>"
    )


def _legend(names: list[str], extra: tuple[str, str] | None = None) -> str:
    items = [(n, charts.PALETTE[i % len(charts.PALETTE)]) for i, n in enumerate(names)]
    if extra:
        items.append(extra)
    return (
        '<div class="legend">'
        + "".join(f'<span><i style="background:{color}"></i>{_e(n)}</span>' for n, color in items)
        + "</div>"
    )


def _success_section(s: dict) -> str:
    days = s["days"]
    labels = [d.strftime("%d %b") for d in days]
    by_job: dict[str, dict] = {}
    for d in s["daily"]:
        by_job.setdefault(d["job_uid"], {})[d["day_utc"]] = d["success_rate"]
    jobs = [j for j in s["jobs"] if j["job_uid"] in by_job]
    series = [(j["job_name"] or j["job_uid"], [by_job[j["job_uid"]].get(day) for day in days]) for j in jobs]
    ok: dict = {}
    done: dict = {}
    for d in s["daily"]:
        ok[d["day_utc"]] = ok.get(d["day_utc"], 0) + d["successes"] + d["warnings"]
        done[d["day_utc"]] = done.get(d["day_utc"], 0) + d["successes"] + d["warnings"] + d["failures"]
    overall = ("all jobs", [ok[day] / done[day] if done.get(day) else None for day in days])
    rates = [v for _, vals in series for v in vals if v is not None]
    low = min(rates, default=1.0)
    y_min = 0.0 if low < 0.5 else 0.5 if low < 0.8 else 0.8
    line = charts.line_chart(
        "chart-success-rate",
        "Daily success rate per job",
        labels,
        series,
        overall=overall,
        y_min=y_min,
        y_step=0.25 if y_min == 0 else 0.1,
    )
    matrix = charts.heat_matrix("chart-success-matrix", "Success rate per job and day", series, labels)
    legend = _legend([n for n, _ in series], extra=("all jobs", charts.TEXT))
    return (
        f'<section id="success"><h2>Daily success rate per job <small>last {len(days)} days, UTC; '
        f"automatic retries folded in</small></h2>{line}{legend}{matrix}</section>"
    )


def _rpo_section(s: dict) -> str:
    vms = s["vms"]
    count = {c: sum(1 for v in vms if v["rpo_status"] == c) for c in ("red", "amber", "green")}
    ring = charts.donut(
        "chart-rpo",
        "VM RPO status",
        [
            ("breach", count["red"], charts.RED),
            ("attention", count["amber"], charts.AMBER),
            ("ok", count["green"], charts.GREEN),
        ],
        f"{len(vms):,}",
        "VMs",
    )
    # every VM needing attention first; green ones only while they fit on a wall screen
    shown = [v for v in vms if v["rpo_status"] != "green"][:MAX_CHIPS]
    if len(vms) <= MAX_GREEN_CHIPS:
        shown += [v for v in vms if v["rpo_status"] == "green"]
    chips = []
    for v in shown:
        hours = v["hours_since_success"]
        since = "never" if hours is None else f"{hours:.0f} h" if hours >= 10 else f"{hours:.1f} h"
        tip = (
            f"{v['vm_display_name']} on {v['backup_server_name'] or v['backup_server_uid']}: last result "
            f"{v['last_result'] or '-'}, last success {_when(v['last_success_utc'])} UTC"
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
    rpo = s["rpo_hours"]
    return (
        f'<section id="rpo"><h2>VM RPO status <small>RPO {rpo:g} h; amber: last success older than '
        f"{rpo / 2:g} h or last result Warning/Failed</small></h2>"
        f'<div class="rpo">{ring}<div class="counts">'
        f'<div><b style="color:var(--red)">{count["red"]:,}</b>breach</div>'
        f'<div><b style="color:var(--amber)">{count["amber"]:,}</b>attention</div>'
        f'<div><b style="color:var(--green)">{count["green"]:,}</b>within RPO</div></div></div>'
        f'<div class="chips" id="vm-chips">{"".join(chips)}</div></section>'
    )


def _transfer_section(s: dict) -> str:
    days = s["days"]
    servers: dict[str, dict] = {}
    for r in s["transfer"]:
        name = r["backup_server_name"] or r["backup_server_uid"] or "(unknown server)"
        servers.setdefault(name, {})[r["day_utc"]] = r["bytes"] / (2**30)
    series = [(name, [per_day.get(d, 0.0) for d in days]) for name, per_day in sorted(servers.items())]
    bars = charts.stacked_bars(
        "chart-transfer", "Transferred GB per day", [d.strftime("%d %b") for d in days], series
    )
    return (
        f'<section id="transfer"><h2>Transferred GB per day <small>per backup server, by the UTC day '
        f"task sessions ended</small></h2>{bars}{_legend([n for n, _ in series])}</section>"
    )


def _jobs_section(s: dict) -> str:
    rows = []
    for j in s["jobs"]:
        last = j["last_result"] or "None"
        shown = "running" if last == "None" else last
        rows.append(
            f'<tr><td>{_e(j["job_name"])}</td><td class="num">{j["runs"]}</td>'
            f'<td class="num">{j["failures"]}</td><td class="num">{j["recovered"]}</td>'
            f'<td class="num">{_pct(j["success_rate"])}</td>'
            f'<td><span class="badge {_e(last)}">{_e(shown)}</span></td></tr>'
        )
    body = "".join(rows) or '<tr><td colspan="6" class="empty-note">no job runs</td></tr>'
    return (
        '<section id="jobs"><h2>Jobs <small>last 7 days</small></h2><table id="jobs-table"><thead><tr>'
        '<th>job</th><th class="num">runs</th><th class="num">failed</th><th class="num">recovered</th>'
        f'<th class="num">success</th><th>last</th></tr></thead><tbody>{body}</tbody></table></section>'
    )


def _failures_section(s: dict) -> str:
    rows = []
    for f in s["failures"]:
        ok = '<span class="ok">✓ later success</span>' if f["later_success"] else ""
        rows.append(
            f'<tr class="{"resolved" if f["later_success"] else ""}">'
            f"<td>{_when(f['occurred_utc'])}</td>"
            f'<td><span class="badge {_e(f["result"])}">{_e(f["result"])}</span></td>'
            f"<td>{_e(f['vm_display_name'])}</td><td>{_e(f['job_name'])}</td>"
            f'<td>{_e(f["backup_server_name"])}</td><td class="reason">{_e(f["reason"])}</td>'
            f"<td>{ok}</td></tr>"
        )
    body = "".join(rows) or '<tr><td colspan="7" class="empty-note">no failed or warning tasks</td></tr>'
    return (
        f'<section class="wide" id="failures"><h2>Failures and warnings <small>newest {len(rows)}, UTC'
        '</small></h2><table id="failures-table"><thead><tr><th>time</th><th>result</th><th>VM</th>'
        "<th>job</th><th>server</th><th>reason</th><th></th></tr></thead>"
        f"<tbody>{body}</tbody></table></section>"
    )


def page(s: dict) -> str:
    """The whole report as one HTML document."""
    generated = _when(s["generated_utc"], "%Y-%m-%d %H:%M:%S")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="dark">
<title>Veeam replication report</title>
<style>{CSS}</style>
</head>
<body>
<header><h1>Veeam replication <span>status</span></h1>
<div class="meta">generated {generated} UTC · last load {_e(_when(s["last_load_utc"]) + (" UTC" if s["last_load_utc"] else ""))} · RPO {s["rpo_hours"]:g} h</div>
</header>
<main>
{_tiles(s)}
{_success_section(s)}
{_rpo_section(s)}
{_transfer_section(s)}
{_jobs_section(s)}
{_failures_section(s)}
</main>
<footer>veeam-etl report · figures from the warehouse views v_replica_job_daily, v_vm_replica_status,
v_replica_transfer_daily and v_replica_failures · GB = 2<sup>30</sup> bytes</footer>
</body>
</html>
"""
