"""How the page's templates write a value. Every `${...}` of templates/ goes through `escape`, their
default filter: text is escaped unless it is Markup, and the helpers here that return Markup escape
what they are given. `trusted` is the one door for markup built elsewhere (the SVG of etl.report.charts).
"""

from __future__ import annotations

import html
import re

from markupsafe import Markup

_BREAK_AFTER = re.compile(r"(?<=[^\w\s])(?=\w)")  # after a punctuation mark, before a letter or digit
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")  # between the words of WaitingRepository


def escape(value) -> str:
    """The templates' default filter: Markup as it is; None as ""; anything else as text with &, <, >,
    " and ' escaped (html.escape with quote=True), so it is safe in element content and in quoted
    attribute values alike."""
    if hasattr(value, "__html__"):
        return value.__html__()
    return html.escape("" if value is None else str(value), quote=True)


def trusted(markup: str) -> Markup:
    """Markup the page inserts as it is: the SVG of etl.report.charts, which escapes every label it
    draws (tests/unit/test_report_format.py::test_chart_labels_are_escaped), and what the helpers here
    built from escaped text."""
    return Markup(markup)  # noqa: S704 - the one door for markup not written by a template


def breakable(value) -> Markup:
    """Warehouse text (a host, VM, job or repository name, a reason) escaped, with a break opportunity
    after each punctuation mark that precedes a letter or digit: a narrow column wraps
    `vbr01.lab.local` as `vbr01.lab.` / `local` and `vm-022` after its hyphen, never mid-word."""
    text = "" if value is None else str(value)
    return trusted("<wbr>".join(escape(part) for part in _BREAK_AFTER.split(text)))


def words(value: str) -> Markup:
    """An outcome as EM sent it, escaped, that may break only between its words (WaitingRepository,
    values newer than this tool)."""
    return trusted(_CAMEL.sub("<wbr>", escape(value)))


def count(n: int) -> str:
    """A whole number with thousands separators: 1,234."""
    return f"{n:,}"


def pct(rate: float | None) -> str:
    """A rate 0..1 in %, one decimal; "–" for None."""
    return "–" if rate is None else f"{rate * 100:.1f}%"


def hours(value: float) -> str:
    """Hours as a setting reads (24, 1.5): Python's general format."""
    return f"{value:g}"
