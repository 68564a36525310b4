"""Where the page's column panels go: a rough model of how tall a panel's HTML lays out
(`estimated_height`), and the order of the panels that lets the two columns of the wide layout end
level (`balanced`). Works on rendered HTML; imports nothing of the report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from html import unescape
from typing import TypeVar

# A rough layout model of a column section (CSS px at 16 px text): enough to split the sections into two
# columns of about the same height. Charts scale with the column's width and text does not, so the
# heights differ between page widths: the split is chosen for the content widths of a column of the
# 1280, 1440 and 1920 px pages alike.
_PX_PER_CHAR, _LINE_PX = 7.6, 19.0
_CONTENT_PX = (570.0, 650.0, 890.0)
S = TypeVar("S", bound=str)  # HTML, or Markup of it
_SERVER = re.compile(r'<small class="server">.*?</small>', re.DOTALL)


def _text_lines(html: str, width_px: float) -> int:
    """Lines the text of `html` takes in a box `width_px` wide."""
    text = unescape(re.sub(r"<[^>]+>", "", html)).strip()
    return max(1, math.ceil(len(text) * _PX_PER_CHAR / width_px)) if text else 0


def estimated_height(section: str, content_px: float = _CONTENT_PX[1]) -> float:
    """About how tall a column section's HTML lays out in a column `content_px` wide, in CSS px: its
    heading and note, the in-column variant of each chart (viewBox height scaled to the column), the
    donut, legend and chip rows, and table rows (each as tall as its longest cell wraps)."""
    height = 32.0 + 30.0  # padding, heading
    note = re.search(r"<h2>.*?<small>(.*?)</small></h2>", section, re.DOTALL)
    height += 17.0 * _text_lines(note.group(1), content_px) if note else 0
    shown = re.sub(r'<div class="full-width">.*?</div>', "", section, flags=re.DOTALL)
    for w, h in re.findall(r'class="chart chart-(?!donut)[^"]*" viewBox="0 0 ([\d.]+) ([\d.]+)"', shown):
        height += float(h) * content_px / float(w) + 12
    height += 240.0 * shown.count("chart-donut")
    for legend in re.findall(r'<div class="legend">(.*?)</div>', shown, re.DOTALL):
        height += 22.0 * _text_lines(legend, content_px)
    chips = re.findall(r'<span class="(?:chip|more)[^"]*"[^>]*>(.*?)</span>', shown, re.DOTALL)
    if chips:
        width = sum(len(unescape(re.sub(r"<[^>]+>", "", c))) * 6.8 + 30 for c in chips)
        height += 12 + 32.0 * math.ceil(width / content_px)
    for body in re.findall(r"<tbody>(.*?)</tbody>", shown, re.DOTALL):
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.DOTALL):
            cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)
            share = content_px / max(len(cells), 1) * 1.6  # text columns get more than an even share
            lines = max((_text_lines(_SERVER.sub("", c), share) for c in cells), default=1)
            lines += 1 if _SERVER.search(row) else 0  # the backup server under a job's name
            height += 12 + _LINE_PX * lines
        height += 36  # the header row
    return height


def balanced(sections: Sequence[S]) -> list[S]:
    """The column panels (their HTML) in the order that lets the two columns end level: the split of
    them into two groups whose estimated heights differ least at the worst of the page widths in
    _CONTENT_PX (each group keeps the given order, the group with the first panel first); the browser's
    column balancing then breaks between the groups, or at a better place if the estimate was off."""
    heights = [[estimated_height(x, px) for x in sections] for px in _CONTENT_PX]

    def worst_gap(mask: int) -> float:
        return max(abs(sum(h) - 2 * sum(x for i, x in enumerate(h) if mask >> i & 1)) for h in heights)

    best = min((mask for mask in range(1 << len(sections)) if mask & 1), key=lambda m: (worst_gap(m), m))
    first = [x for i, x in enumerate(sections) if best >> i & 1]
    return first + [x for i, x in enumerate(sections) if not best >> i & 1]
