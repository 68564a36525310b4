"""Inline SVG charts for the HTML report, drawn in plain Python: a line chart, stacked bars, a donut
and a heat matrix. No JavaScript, no external fetch; every label is escaped here.

Imports nothing from the rest of etl.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

PALETTE = (
    "#58a6ff",
    "#3fb950",
    "#d29922",
    "#bc8cff",
    "#39c5cf",
    "#ff7b72",
    "#f778ba",
    "#a5d6ff",
    "#7ee787",
    "#e3b341",
    "#d2a8ff",
    "#56d4dd",
)
GRID, AXIS_TEXT, TEXT = "#30363d", "#8b949e", "#e6edf3"
GREEN, AMBER, RED, EMPTY = "#2ea043", "#d29922", "#f85149", "#21262d"


def _e(value) -> str:
    return escape(str(value), quote=True)


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def nice_max(value: float, ticks: int = 4) -> tuple[float, float]:
    """A round axis maximum at or above `value` and its tick step (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0, 0.25
    raw = value / ticks
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return step * math.ceil(value / step - 1e-9), step


def _svg(chart_id: str, kind: str, width: int, height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg id="{_e(chart_id)}" class="chart chart-{kind}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_e(label)}" '
        f'preserveAspectRatio="xMidYMid meet">\n<title>{_e(label)}</title>\n' + "\n".join(body) + "\n</svg>"
    )


def _x_labels(labels: Sequence[str], x_of: Callable[[int], float], y: float, every: int) -> list[str]:
    out = []
    for i, lab in enumerate(labels):
        if i % every == 0 or i == len(labels) - 1:
            out.append(
                f'<text x="{_n(x_of(i))}" y="{_n(y)}" text-anchor="middle" class="axis">{_e(lab)}</text>'
            )
    return out


def line_chart(
    chart_id: str,
    label: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence]],
    *,
    y_min: float = 0.0,
    y_max: float = 1.0,
    y_step: float = 0.25,
    y_format: Callable[[float], str] = lambda v: f"{v * 100:.0f}%",
    value_format: Callable[[float], str] = lambda v: f"{v * 100:.1f}%",
    overall: tuple[str, Sequence] | None = None,
    width: int = 960,
    height: int = 280,
) -> str:
    """One line per series over the x labels, plus an optional `overall` line on top; None breaks a
    line (no data that day)."""
    left, right, top, bottom = 56, 16, 14, 34
    pw, ph = width - left - right, height - top - bottom
    n = max(1, len(x_labels))

    def x_of(i: int) -> float:
        return left + (pw * (i + 0.5) / n)

    def y_of(v: float) -> float:
        return top + ph * (1 - (min(max(v, y_min), y_max) - y_min) / ((y_max - y_min) or 1))

    body = []
    steps = round((y_max - y_min) / y_step)
    for k in range(steps + 1):
        v = y_min + k * y_step
        y = y_of(v)
        body.append(f'<line x1="{left}" y1="{_n(y)}" x2="{width - right}" y2="{_n(y)}" stroke="{GRID}" />')
        body.append(
            f'<text x="{left - 8}" y="{_n(y + 5)}" text-anchor="end" class="axis">{_e(y_format(v))}</text>'
        )
    body += _x_labels(x_labels, x_of, height - 10, max(1, math.ceil(n / 10)))
    drawn = [(name, values, PALETTE[s % len(PALETTE)], 2.5) for s, (name, values) in enumerate(series)]
    if overall is not None:  # drawn last and on top: where every job is at 100 % only this line shows
        drawn.append((overall[0], overall[1], TEXT, 3.5))
    for name, values, color, stroke in drawn:
        path, pen = [], "M"
        for i, v in enumerate(values):
            if v is None:
                pen = "M"
                continue
            path.append(f"{pen}{_n(x_of(i))},{_n(y_of(v))}")
            pen = "L"
        body.append(f'<g class="series" data-series="{_e(name)}">')
        if path:
            body.append(
                f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="{_n(stroke)}" '
                f'stroke-linejoin="round" stroke-linecap="round" />'
            )
        for i, v in enumerate(values):
            if v is not None:
                body.append(
                    f'<circle cx="{_n(x_of(i))}" cy="{_n(y_of(v))}" r="{_n(stroke / 2 + 1.5)}" fill="{color}">'
                    f"<title>{_e(name)} {_e(x_labels[i])}: {_e(value_format(v))}</title></circle>"
                )
        body.append("</g>")
    if not drawn:
        body.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="empty">no runs</text>'
        )
    return _svg(chart_id, "line", width, height, label, body)


def stacked_bars(
    chart_id: str,
    label: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence]],
    *,
    unit: str = "GB",
    width: int = 960,
    height: int = 300,
) -> str:
    """Bars per x label, one stacked segment per series; the total is written above each bar."""
    left, right, top, bottom = 64, 16, 26, 34
    pw, ph = width - left - right, height - top - bottom
    n = max(1, len(x_labels))
    totals = [sum(vals[i] or 0 for _, vals in series) for i in range(len(x_labels))]
    y_max, step = nice_max(max(totals, default=0))
    slot = pw / n
    bar = min(56.0, slot * 0.7)
    body = []
    k = 0
    while k * step <= y_max + 1e-9:
        y = top + ph * (1 - k * step / y_max)
        body.append(f'<line x1="{left}" y1="{_n(y)}" x2="{width - right}" y2="{_n(y)}" stroke="{GRID}" />')
        body.append(
            f'<text x="{left - 8}" y="{_n(y + 5)}" text-anchor="end" class="axis">{k * step:,.0f}</text>'
        )
        k += 1
    body += _x_labels(x_labels, lambda i: left + slot * (i + 0.5), height - 10, max(1, math.ceil(n / 14)))
    for i in range(len(x_labels)):
        x = left + slot * (i + 0.5) - bar / 2
        base = top + ph
        for s, (name, values) in enumerate(series):
            v = values[i] or 0
            if v <= 0:
                continue
            h = ph * v / y_max
            base -= h
            body.append(
                f'<rect class="bar" x="{_n(x)}" y="{_n(base)}" width="{_n(bar)}" height="{_n(h)}" '
                f'fill="{PALETTE[s % len(PALETTE)]}" rx="2"><title>{_e(name)} {_e(x_labels[i])}: '
                f"{v:,.1f} {_e(unit)}</title></rect>"
            )
        if totals[i] > 0:
            body.append(
                f'<text x="{_n(x + bar / 2)}" y="{_n(base - 6)}" text-anchor="middle" class="total">'
                f"{totals[i]:,.0f}</text>"
            )
    return _svg(chart_id, "bars", width, height, label, body)


def donut(
    chart_id: str,
    label: str,
    segments: Sequence[tuple[str, int, str]],
    center: str,
    sub: str,
    *,
    size: int = 260,
) -> str:
    """A ring of (name, count, colour) segments with a big number in the middle."""
    r, stroke = size / 2 - 22, 30
    c = size / 2
    circ = 2 * math.pi * r
    total = sum(v for _, v, _ in segments)
    body = [f'<circle cx="{c}" cy="{c}" r="{_n(r)}" fill="none" stroke="{EMPTY}" stroke-width="{stroke}" />']
    offset = 0.0
    for name, value, color in segments:
        if value <= 0 or total == 0:
            continue
        length = circ * value / total
        body.append(
            f'<circle class="segment" cx="{c}" cy="{c}" r="{_n(r)}" fill="none" stroke="{color}" '
            f'stroke-width="{stroke}" stroke-dasharray="{length:.2f} {circ - length:.2f}" '
            f'stroke-dashoffset="{-offset:.2f}" transform="rotate(-90 {c} {c})">'
            f"<title>{_e(name)}: {value}</title></circle>"
        )
        offset += length
    body.append(f'<text x="{c}" y="{c + 6}" text-anchor="middle" class="donut-value">{_e(center)}</text>')
    body.append(f'<text x="{c}" y="{c + 34}" text-anchor="middle" class="axis">{_e(sub)}</text>')
    return _svg(chart_id, "donut", size, size, label, body)


def rate_color(rate: float | None) -> str:
    if rate is None:
        return EMPTY
    return GREEN if rate >= 0.999 else AMBER if rate >= 0.75 else RED


def heat_matrix(
    chart_id: str,
    label: str,
    rows: Sequence[tuple[str, Sequence]],
    x_labels: Sequence[str],
    *,
    width: int = 960,
    cell_h: int = 30,
) -> str:
    """Rows x days of rates (0..1 or None), coloured green/amber/red; figures shown below 100 %."""
    left, top, right = 230, 6, 8
    n = max(1, len(x_labels))
    cw = (width - left - right) / n
    height = top + cell_h * max(1, len(rows)) + 28
    body = []
    for r, (name, values) in enumerate(rows):
        y = top + r * cell_h
        shown = name if len(name) <= 30 else name[:29] + "…"
        body.append(
            f'<text x="{left - 10}" y="{_n(y + cell_h / 2 + 5)}" text-anchor="end" class="label">'
            f"{_e(shown)}<title>{_e(name)}</title></text>"
        )
        for i, v in enumerate(values):
            x = left + i * cw
            tip = "no runs" if v is None else f"{v * 100:.1f}%"
            body.append(
                f'<rect class="cell" x="{_n(x + 1.5)}" y="{_n(y + 1.5)}" width="{_n(cw - 3)}" '
                f'height="{cell_h - 3}" rx="3" fill="{rate_color(v)}"><title>{_e(name)} '
                f"{_e(x_labels[i])}: {tip}</title></rect>"
            )
            if v is not None and v < 0.999:
                body.append(
                    f'<text x="{_n(x + cw / 2)}" y="{_n(y + cell_h / 2 + 5)}" text-anchor="middle" '
                    f'class="cell-text">{v * 100:.0f}</text>'
                )
    body += _x_labels(x_labels, lambda i: left + cw * (i + 0.5), height - 8, max(1, math.ceil(n / 14)))
    return _svg(chart_id, "matrix", width, height, label, body)
