"""Inline SVG charts for the HTML report, drawn in plain Python: a line chart, stacked bars, a donut
and a heat matrix. No JavaScript, no external fetch; every label is escaped here, so the page may
insert a chart as it is. Imports nothing from the rest of etl.
"""

# Every chart is one `<svg class="chart">` with a `viewBox` (it scales to the width of its box), an
# accessible `<title>`, a visible title (`text.chart-title`), axis titles with their unit
# (`text.axis-title`), a tooltip (`<title>`) with the unit on every mark, and every label inside the
# viewBox (text widths are estimated conservatively). With nothing to draw a chart says so
# (`data-empty="true"`, `text.empty`) and draws no axis.

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
GRID, TEXT = "#30363d", "#e6edf3"
GREEN, AMBER, RED, EMPTY = "#2ea043", "#d29922", "#f85149", "#21262d"

# font sizes in viewBox units; the page's CSS sets the same sizes on these classes
TICK, TITLE, LABEL = 14, 16, 14
TITLE_H = 30  # height of the title row at the top of every chart
NO_DATA = "No data yet"  # what an empty chart or tile says on a warehouse with nothing loaded
NOTHING = "Nothing to show"  # ... and on a warehouse that has data, none of it in the period shown


def _e(value) -> str:
    return escape(str(value), quote=True)


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def text_width(text: str, size: float, bold: bool = False) -> float:
    """A generous estimate of the width of `text` at font size `size` in the sans-serif faces the page
    asks for (DejaVu Sans is the widest of them), so that labels sized by it fit: narrow glyphs 0.36 em,
    lower case and digits 0.66 em, capitals 0.78 em, m/w/%/@ 1 em; bold 8 % more."""
    em = 0.0
    for ch in text:
        if ch in "iljtfrI.,:;'|!() ":
            em += 0.36
        elif ch in "MWmw@%":
            em += 1.0
        elif ch.isupper():
            em += 0.78
        else:
            em += 0.66
    return em * size * (1.08 if bold else 1.0)


def fit(text: str, width: float, size: float, bold: bool = False) -> str:
    """`text`, shortened in the middle with "…" so that it fits in `width` at font size `size`: names
    that differ only at their end ("… Replication 03" / "… Replication 04") stay apart."""
    if text_width(text, size, bold) <= width:
        return text
    head, tail = len(text) // 2, len(text) - len(text) // 2
    while head + tail > 0:
        if head * 2 > tail:  # keep about twice as much of the end as of the start
            head -= 1
        else:
            tail -= 1
        shown = text[:head].rstrip() + "…" + text[len(text) - tail :].lstrip()
        if text_width(shown, size, bold) <= width:
            return shown
    return "…"


def nice_max(value: float, ticks: int = 4) -> tuple[float, float]:
    """A round axis maximum at or above `value` and its tick step (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0, 0.25
    raw = value / ticks
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return step * math.ceil(value / step - 1e-9), step


def decimals(step: float) -> int:
    """Decimals needed to write every multiple of `step` exactly (0.25 -> 2, 0.5 -> 1, 20 -> 0)."""
    for d in range(4):
        if abs(step * 10**d - round(step * 10**d)) < 1e-9:
            return d
    return 4


def _svg(
    chart_id: str, kind: str, width: int, height: int, title: str, body: list[str], empty: bool = False
) -> str:
    return (
        f'<svg id="{_e(chart_id)}" class="chart chart-{kind}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_e(title)}" '
        f'preserveAspectRatio="xMidYMid meet" data-empty="{"true" if empty else "false"}">\n'
        f"<title>{_e(title)}</title>\n"
        f'<text x="0" y="{TITLE_H - 10}" class="chart-title">{_e(fit(title, width, TITLE, True))}</text>\n'
        + "\n".join(body)
        + "\n</svg>"
    )


def empty_chart(chart_id: str, kind: str, title: str, empty: tuple[str, str], width: int, height: int) -> str:
    """A chart with nothing to draw: its title, a headline and why (`empty`, e.g. ("No data yet",
    "no job run finished in the last 14 days")), and no axis."""
    headline, why = empty
    mid = TITLE_H + (height - TITLE_H) / 2
    body = [
        f'<rect x="0.5" y="{TITLE_H + 0.5}" width="{width - 1}" height="{height - TITLE_H - 1}" rx="6" '
        f'fill="none" stroke="{GRID}" stroke-dasharray="6 6" />',
        f'<text x="{width / 2}" y="{_n(mid - 4)}" text-anchor="middle" class="empty">{_e(headline)}</text>',
        f'<text x="{width / 2}" y="{_n(mid + 22)}" text-anchor="middle" class="empty-why">'
        f"{_e(fit(why, width - 20, TICK))}</text>",
    ]
    return _svg(chart_id, kind, width, height, title, body, empty=True)


def _every(labels: Sequence[str], slot: float, size: float = TICK) -> int:
    """Show every n-th x label so that neighbours never touch."""
    widest = max((text_width(lab, size) for lab in labels), default=0) + 10
    return max(1, math.ceil(widest / max(slot, 1e-9)))


def _x_labels(
    labels: Sequence[str], x_of: Callable[[int], float], y: float, slot: float, lo: float, hi: float
) -> list[str]:
    """Tick labels under the x axis, centred on their slot but kept within [lo, hi]."""
    every = _every(labels, slot)
    out = []
    last = len(labels) - 1
    for i, lab in enumerate(labels):
        # the newest day is always labelled; the label before it is dropped when they would touch
        if (i % every == 0 and (i == last or last - i >= every)) or i == last:
            half = text_width(lab, TICK) / 2
            x = min(max(x_of(i), lo + half), hi - half)
            out.append(
                f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="middle" class="tick x-tick">{_e(lab)}</text>'
            )
    return out


def _axis_titles(
    x_title: str, y_title: str, width: int, height: int, left: float, top: float, bottom: float
) -> list[str]:
    """The x axis title under the tick labels, the y axis title above the tick labels of the y axis."""
    return [
        f'<text x="{_n(left + (width - left) / 2)}" y="{height - 6}" text-anchor="middle" '
        f'class="axis-title x-title">{_e(x_title)}</text>',
        f'<text x="4" y="{_n(top - 10)}" class="axis-title y-title">{_e(y_title)}</text>',
    ]


def line_chart(
    chart_id: str,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence]],
    *,
    x_title: str,
    y_title: str,
    y_min: float = 0.0,
    y_max: float = 1.0,
    y_step: float = 0.25,
    y_format: Callable[[float], str] = lambda v: f"{v * 100:.0f}%",
    value_format: Callable[[float], str] = lambda v: f"{v * 100:.1f}%",
    overall: tuple[str, Sequence] | None = None,
    empty: tuple[str, str] = (NO_DATA, "nothing to draw"),
    width: int = 820,
    height: int = 300,
) -> str:
    """One line per series over the x labels, plus an optional `overall` line on top; None breaks a
    line (no data that day). Values and axis in the units `y_format`/`value_format` write."""
    drawn = [(name, values, PALETTE[s % len(PALETTE)], 2.5) for s, (name, values) in enumerate(series)]
    if overall is not None:  # drawn last and on top: where every job is at 100 % only this line shows
        drawn.append((overall[0], overall[1], TEXT, 3.5))
    if not any(v is not None for _, values, _, _ in drawn for v in values):
        return empty_chart(chart_id, "line", title, empty, width, 200)
    top, bottom, right = TITLE_H + 30, 48, 12
    steps = round((y_max - y_min) / y_step)
    left = max(text_width(y_format(y_min + k * y_step), TICK) for k in range(steps + 1)) + 14
    pw, ph = width - left - right, height - top - bottom
    n = max(1, len(x_labels))

    def x_of(i: int) -> float:
        return left + (pw * (i + 0.5) / n)

    def y_of(v: float) -> float:
        return top + ph * (1 - (min(max(v, y_min), y_max) - y_min) / ((y_max - y_min) or 1))

    body = []
    for k in range(steps + 1):
        v = y_min + k * y_step
        y = y_of(v)
        body.append(
            f'<line x1="{_n(left)}" y1="{_n(y)}" x2="{width - right}" y2="{_n(y)}" stroke="{GRID}" />'
        )
        body.append(
            f'<text x="{_n(left - 8)}" y="{_n(y + 5)}" text-anchor="end" class="tick y-tick">'
            f"{_e(y_format(v))}</text>"
        )
    # kept right of the y tick labels: the first label must not run into the lowest tick ("0%")
    body += _x_labels(x_labels, x_of, top + ph + 20, pw / n, left - 4, width)
    body += _axis_titles(x_title, y_title, width, height, left, top, bottom)
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
                    f'<circle class="point" cx="{_n(x_of(i))}" cy="{_n(y_of(v))}" r="{_n(stroke / 2 + 1.5)}" '
                    f'fill="{color}"><title>{_e(name)}, {_e(x_labels[i])}: {_e(value_format(v))}</title></circle>'
                )
        body.append("</g>")
    return _svg(chart_id, "line", width, height, title, body)


def stacked_bars(
    chart_id: str,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence]],
    *,
    x_title: str,
    y_title: str,
    unit: str,
    tips: Sequence[Sequence[str]] | None = None,
    empty: tuple[str, str] = (NO_DATA, "nothing to draw"),
    width: int = 540,
    height: int = 320,
    colors: Sequence[str] | None = None,
    counts: bool = False,
) -> str:
    """Bars per x label, one stacked segment per series (values in `unit`); the total is written
    above each bar. `tips[s][i]`, when given, is added to the tooltip of segment (series s, label i).
    `colors[s]` colours series s (default: PALETTE in order); `counts`: the values are whole things
    (VMs), so ticks step by whole numbers and values are written without decimals."""
    totals = [sum(vals[i] or 0 for _, vals in series) for i in range(len(x_labels))]
    if not any(t > 0 for t in totals):
        return empty_chart(chart_id, "bars", title, empty, width, 200)
    y_max, step = nice_max(max(totals))
    if counts and step < 1:
        step, y_max = 1.0, float(math.ceil(max(totals)))
    places = decimals(step)
    tick_text = [f"{k * step:,.{places}f}" for k in range(round(y_max / step) + 1)]
    top, bottom, right = TITLE_H + 34, 48, 8
    left = max(text_width(t, TICK) for t in tick_text) + 14
    pw, ph = width - left - right, height - top - bottom
    n = max(1, len(x_labels))
    slot = pw / n
    bar = min(56.0, slot * 0.72)
    total_places = 0 if counts or max(totals) >= 100 else 1
    value_places = 0 if counts else max(1, total_places)
    body = []
    for k, label in enumerate(tick_text):
        y = top + ph * (1 - k * step / y_max)
        body.append(
            f'<line x1="{_n(left)}" y1="{_n(y)}" x2="{width - right}" y2="{_n(y)}" stroke="{GRID}" />'
        )
        body.append(
            f'<text x="{_n(left - 8)}" y="{_n(y + 5)}" text-anchor="end" class="tick y-tick">{label}</text>'
        )
    body += _x_labels(x_labels, lambda i: left + slot * (i + 0.5), top + ph + 20, slot, 0, width)
    body += _axis_titles(x_title, y_title, width, height, left, top, bottom)
    show_totals = text_width("8" * (len(f"{max(totals):,.{total_places}f}")), 13) <= slot + 4
    for i in range(len(x_labels)):
        x = left + slot * (i + 0.5) - bar / 2
        base: float = top + ph
        for s, (name, values) in enumerate(series):
            v = values[i] or 0
            if v <= 0:
                continue
            h = ph * v / y_max
            base -= h
            extra = f", {tips[s][i]}" if tips and tips[s][i] else ""
            body.append(
                f'<rect class="bar" x="{_n(x)}" y="{_n(base)}" width="{_n(bar)}" height="{_n(h)}" '
                f'fill="{colors[s] if colors else PALETTE[s % len(PALETTE)]}" rx="2"><title>{_e(name)}, '
                f"{_e(x_labels[i])}: {v:,.{value_places}f} {_e(unit)}{_e(extra)}</title></rect>"
            )
        if totals[i] > 0 and show_totals:
            body.append(
                f'<text x="{_n(x + bar / 2)}" y="{_n(base - 6)}" text-anchor="middle" class="total">'
                f"{totals[i]:,.{total_places}f}<title>{_e(x_labels[i])}: {totals[i]:,.{value_places}f} {_e(unit)} "
                f"in all</title></text>"
            )
    return _svg(chart_id, "bars", width, height, title, body)


def donut(
    chart_id: str,
    title: str,
    segments: Sequence[tuple[str, int, str]],
    center: str,
    sub: str,
    *,
    unit: str,
    size: int = 240,
) -> str:
    """A ring of (name, count, colour) segments with a big number in the middle; counts in `unit`.
    With no counts at all: a grey ring saying "No data yet"."""
    r, stroke = size / 2 - 22, 30
    c = size / 2
    cy = TITLE_H + c
    circ = 2 * math.pi * r
    total = sum(v for _, v, _ in segments)
    body = [f'<circle cx="{c}" cy="{cy}" r="{_n(r)}" fill="none" stroke="{EMPTY}" stroke-width="{stroke}" />']
    offset = 0.0
    for name, value, color in segments:
        if value <= 0 or total == 0:
            continue
        length = circ * value / total
        body.append(
            f'<circle class="segment" cx="{c}" cy="{cy}" r="{_n(r)}" fill="none" stroke="{color}" '
            f'stroke-width="{stroke}" stroke-dasharray="{length:.2f} {circ - length:.2f}" '
            f'stroke-dashoffset="{-offset:.2f}" transform="rotate(-90 {c} {cy})">'
            f"<title>{_e(name)}: {value:,} {_e(unit)} ({value / total * 100:.0f}%)</title></circle>"
        )
        offset += length
    if total == 0:
        body.append(f'<text x="{c}" y="{cy + 6}" text-anchor="middle" class="empty">{NO_DATA}</text>')
    else:
        body.append(
            f'<text x="{c}" y="{cy + 8}" text-anchor="middle" class="donut-value">{_e(center)}</text>'
        )
        body.append(f'<text x="{c}" y="{cy + 34}" text-anchor="middle" class="tick">{_e(sub)}</text>')
    return _svg(chart_id, "donut", size, size + TITLE_H, title, body, empty=total == 0)


def rate_color(rate: float | None) -> str:
    if rate is None:
        return EMPTY
    return GREEN if rate >= 0.999 else AMBER if rate >= 0.75 else RED


RATE_LEGEND = (("100 %", GREEN), ("75–99.9 %", AMBER), ("below 75 %", RED), ("no finished run", EMPTY))


def heat_matrix(
    chart_id: str,
    title: str,
    rows: Sequence[tuple[str, Sequence, Sequence[str]]],
    x_labels: Sequence[str],
    *,
    x_title: str,
    y_title: str,
    empty: tuple[str, str] = (NO_DATA, "nothing to draw"),
    width: int = 820,
    cell_h: int = 30,
) -> str:
    """Rows x columns of rates (0..1, or None for no finished run), coloured as RATE_LEGEND; the
    figure in % is written in cells below 100 %. rows: (name, rates, tooltip text per cell)."""
    if not rows:
        return empty_chart(chart_id, "matrix", title, empty, width, 160)
    label_w = min(max(text_width(name, LABEL) for name, _, _ in rows), width * 0.32)
    left, top, right = label_w + 10, TITLE_H + 26, 2
    n = max(1, len(x_labels))
    cw = (width - left - right) / n
    height = top + cell_h * len(rows) + 50
    body = [f'<text x="4" y="{top - 8}" class="axis-title y-title">{_e(y_title)}</text>']
    for r, (name, values, tips) in enumerate(rows):
        y = top + r * cell_h
        body.append(
            f'<text x="{_n(left - 10)}" y="{_n(y + cell_h / 2 + 5)}" text-anchor="end" class="label">'
            f"{_e(fit(name, label_w, LABEL))}<title>{_e(name)}</title></text>"
        )
        for i, v in enumerate(values):
            x = left + i * cw
            body.append(
                f'<rect class="cell" x="{_n(x + 1.5)}" y="{_n(y + 1.5)}" width="{_n(cw - 3)}" '
                f'height="{cell_h - 3}" rx="3" fill="{rate_color(v)}"><title>{_e(name)}, '
                f"{_e(x_labels[i])}: {_e(tips[i])}</title></rect>"
            )
            if v is not None and v < 0.999:
                figure = f"{v * 100:.0f}%"
                if text_width(figure, 13, True) <= cw - 4:
                    body.append(
                        f'<text x="{_n(x + cw / 2)}" y="{_n(y + cell_h / 2 + 5)}" text-anchor="middle" '
                        f'class="cell-text">{figure}</text>'
                    )
    body += _x_labels(x_labels, lambda i: left + cw * (i + 0.5), top + cell_h * len(rows) + 20, cw, 0, width)
    body += _axis_titles(x_title, "", width, height, left, top, 0)[:1]
    return _svg(chart_id, "matrix", width, height, title, body)
