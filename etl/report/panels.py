"""The parts the panels of the HTML page are made of, as typed context for templates/panels.html: a
chart drawn at both layout widths, a badge, a chip, a job or failure row, and what an empty panel says.
The panels themselves: etl.report.backup and etl.report.replication; nothing here writes HTML.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup

from . import charts
from .markup import trusted
from .summary import Summary

MAX_CHIPS = 120  # red and amber VMs (and machines) shown by name
MAX_GREEN_CHIPS = 80  # green VMs are named only in estates up to this size
# viewBox widths of a chart: in one of the two columns (from 1280 px), and across the one column below,
# so that chart text keeps about the size of the page's text at every width
COLUMN_WIDTH, FULL_WIDTH = 680, 820
WHEN = "%Y-%m-%d %H:%M"

Legend = list[tuple[str, str]]  # (name, colour) of each series
Empty = tuple[str, str]  # what an empty chart or panel says: a headline and why


def when(value: datetime | None, fmt: str = WHEN) -> str:
    """An instant in UTC as the page writes it; "never" for None."""
    return "never" if value is None else value.astimezone(UTC).strftime(fmt)


def empty(s: Summary, why: str, side: str = "replication") -> Empty:
    """What an empty chart or panel says: "No data yet" when the warehouse holds nothing of its side
    ("replication" or "backup"), else that the period shown is empty; and why."""
    loaded = s.backup_loaded if side == "backup" else s.replication_loaded
    return (charts.NOTHING if loaded else charts.NO_DATA, why)


@dataclass(frozen=True)
class Chart:
    """A chart of a column panel drawn twice: for a column of the two-column layout (COLUMN_WIDTH) and
    for the one-column layout under 1280 px (FULL_WIDTH, id + "-full"); CSS shows one, so its text keeps
    about the size of the page's text at every width. SVG from etl.report.charts, which escapes it."""

    column: Markup
    full: Markup

    @classmethod
    def draw(cls, draw: Callable[[str, int], str], chart_id: str) -> Chart:
        """draw(chart id, viewBox width) -> SVG, at both widths."""
        return cls(trusted(draw(chart_id, COLUMN_WIDTH)), trusted(draw(chart_id + "-full", FULL_WIDTH)))


def series_legend(names: list[str]) -> Legend:
    return [(n, charts.PALETTE[i % len(charts.PALETTE)]) for i, n in enumerate(names)]


def qualified(name: str, server: str | None, names: list[str]) -> str:
    """`name`, with its backup server when `names` holds it more than once (one machine name on two
    servers is two machines, or one protected twice: either way two chips that must not look alike)."""
    return f"{name} ({server})" if server and names.count(name) > 1 else name


@dataclass(frozen=True)
class Badge:
    """A session or run outcome as a badge: `label` as EM sent it (None: no outcome, drawn "–"), its
    class (success, warning, failed; running; idle; other for any other value) and tooltip."""

    label: str | None
    cls: str = "other"
    tip: str = ""


def badge(status: str | None, result: str | None) -> Badge:
    """Green/amber/red for Success/Warning/Failed, outlined blue while the session runs (result None),
    outlined grey for any other value."""
    if status is None:
        return Badge(None)
    if result is None:
        return Badge(status, "running", status)
    return Badge(
        status, {"Success": "success", "Warning": "warning", "Failed": "failed"}.get(status, "other"), status
    )


def outcome_badge(outcome: str | None) -> Badge:
    """A run's outcome ("running", "idle" or the Result as EM sent it) as a badge."""
    if outcome == "idle":
        return Badge("idle", "idle", "idle: a backup copy session waiting for new restore points to copy")
    return badge(outcome, None if outcome == "running" else outcome)


@dataclass(frozen=True)
class Chip:
    """A machine named in a list of those needing attention: colour, tooltip, name, age (small), and
    whether it is an agent computer (marked "agent")."""

    level: str
    tip: str
    name: str
    age: str
    agent: bool = False


@dataclass(frozen=True)
class JobRow:
    """One job in a jobs table: its name and backup server, runs, failed, other, recovered, success rate
    (0..1 or None) and the last outcome."""

    name: str | None
    server: str | None
    runs: int
    failed: int
    other: int
    recovered: int
    rate: float | None
    last: Badge


@dataclass(frozen=True)
class JobsPanel:
    rows: list[JobRow]
    empty: Empty  # what the panel says without rows


@dataclass(frozen=True)
class FailureRow:
    """One failed or warned task (or job session) in a failures table."""

    when: str
    result: Badge
    what: str | None  # the VM or machine
    job: str | None
    attempt: str  # " (retry N)" for an automatic retry, else ""
    server: str | None
    reason: str | None
    fixed: str  # "recovered by retry", "later success" or ""


@dataclass(frozen=True)
class FailuresPanel:
    rows: list[FailureRow]
    loaded: bool  # the warehouse holds something of this side
    empty: Empty
