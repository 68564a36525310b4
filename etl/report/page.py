"""The HTML report: one self-contained, dark, wall-screen page drawn from the Summary by the Mako
templates in templates/ (escaping every value by default, markup.escape) with static/report.css inlined
and the charts as inline SVG: no script, no external fetch, no web font; it works offline.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import backup, replication
from .layout import balanced
from .markup import trusted
from .panels import when
from .summary import VIEWS_READ, Summary
from .tiles import TILES

if TYPE_CHECKING:
    from mako.lookup import TemplateLookup

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STYLESHEET = HERE / "static" / "report.css"
# what templates may call besides their context: the default filter and the helpers that write values
TEMPLATE_IMPORTS = "from etl.report.markup import escape, breakable, words, count, pct, hours"


@dataclass(frozen=True)
class Panel:
    """One panel of the page: its id, which is also the name of the `<%def>` of templates/panels.html
    that draws it (hyphens as underscores); where it goes ("column": the two balanced columns, in this
    order; "full": full width below them); and the function that works out its context."""

    key: str
    area: str
    context: Callable[[Summary], object]

    @property
    def template_def(self) -> str:
        return self.key.replace("-", "_")


# The layout: the headline tiles (etl.report.tiles) wrap; the "column" panels flow into two balanced
# columns from 1280 px wide (CSS multi-column: the browser splits them where both columns end at about
# the same height, and `balanced` orders them so that it can) and into one column below; then the
# "full" panels. It fits without horizontal scrolling from 1024 px to 1920 px and beyond. Names break
# between their parts (after a dot, hyphen or backslash), never inside a word. Every chart and tile
# says charts.NO_DATA when the warehouse holds nothing to show.
PANELS: list[Panel] = [
    Panel("backup-success", "column", backup.backup_success),
    Panel("backup-jobs", "column", backup.backup_jobs),
    Panel("backup-machines", "column", backup.backup_machines),
    Panel("repositories", "column", backup.repositories),
    Panel("success", "column", replication.success),
    Panel("jobs", "column", replication.jobs),
    Panel("rpo", "column", replication.rpo),
    Panel("source-size", "column", replication.source_size),
    Panel("backup-failures", "full", backup.backup_failures),
    Panel("failures", "full", replication.failures),
]


@functools.cache
def templates() -> TemplateLookup:
    """The page's templates, compiled once a process: `${...}` escaped by default, an undefined name an
    error (never an empty string). Mako is imported here, when a page is drawn: `veeam-etl metrics`
    reads views through this package and starts faster without it."""
    from mako.lookup import TemplateLookup

    return TemplateLookup(
        directories=[str(TEMPLATES)],
        default_filters=["escape"],
        imports=[TEMPLATE_IMPORTS],
        strict_undefined=True,
        input_encoding="utf-8",
    )


def panel(s: Summary, which: Panel) -> str:
    """One panel drawn from the summary, as HTML."""
    draw = templates().get_template("panels.html").get_def(which.template_def)
    return draw.render(p=which.context(s))


def page(s: Summary) -> str:
    """The whole report as one HTML document."""
    drawn = {area: [trusted(panel(s, p)) for p in PANELS if p.area == area] for area in ("column", "full")}
    return (
        templates()
        .get_template("page.html")
        .render(
            stylesheet=trusted(STYLESHEET.read_text(encoding="utf-8")),
            generated=when(s.generated_utc, "%Y-%m-%d %H:%M:%S"),
            last_load=when(s.last_load_utc) + (" UTC" if s.last_load_utc else ""),
            backup_rpo_hours=s.backup_rpo_hours,
            rpo_hours=s.rpo_hours,
            tile_rows={side: [tile(s) for tile in row] for side, row in TILES.items()},
            column=balanced(drawn["column"]),
            full=drawn["full"],
            views=VIEWS_READ,
        )
    )
