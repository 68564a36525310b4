"""`veeam-etl report`: `render` the reporting views (sql/) as terminal tables, CSV, JSON or one HTML
page, or `write` that into a file; never writes to the warehouse. read.py reads a view → summary.py
builds the typed Summary → text.py, data.py and page.py render it (renderers depend on the summary).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from .. import db
from ..errors import ConfigError, LoadError
from . import data, page, summary, text
from .read import VIEWS, read_view, view_columns

__all__ = ["FORMATS", "VIEWS", "read_view", "render", "view_columns", "write"]

FORMATS = ("table", "csv", "json", "html")


def render(eng: Engine, fmt: str, view: str | None = None, limit: int | None = None) -> str:
    """The report as one string in `fmt` (table, csv, json or html).

    With `view`: that view's rows (at most `limit`) as a table, CSV or JSON, column names as in the
    view. Without: the summary as terminal tables, as JSON (every field of the Summary) or as the
    HTML page; CSV needs a view (one table per invocation). Raises ConfigError for a bad format/view
    combination or a warehouse without schema, LoadError when the views cannot be read.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if view is not None and fmt == "html":
        raise ConfigError("--view applies to table, csv and json; the HTML page shows every view")
    if view is not None and view not in VIEWS:
        raise ConfigError(f"unknown view {view!r}: choose one of {', '.join(VIEWS)}")
    if view is None and fmt == "csv":
        raise ConfigError(
            f"--format csv writes one view per invocation: add --view with one of {', '.join(VIEWS)} "
            "(--format json without --view gives the whole summary)"
        )
    if db.current(eng) is None:
        raise ConfigError(
            f"warehouse {db.masked(str(eng.url))} has no schema yet: run `veeam-etl migrate` or a load first"
        )
    try:
        return _render(eng, fmt, view, limit)
    except SQLAlchemyError as exc:
        raise LoadError(
            f"reading the reporting views of {db.masked(str(eng.url))} failed "
            f"(run `veeam-etl migrate` to re-create them): {type(exc).__name__}: "
            f"{getattr(exc, 'orig', None) or exc}"
        ) from None


def write(eng: Engine, fmt: str, out: str | Path, view: str | None = None, limit: int | None = None) -> Path:
    """Render the report into file `out` (UTF-8); returns its absolute path. Raises as `render`, and
    ConfigError when the file cannot be written."""
    body = render(eng, fmt, view, limit)
    path = Path(out).expanduser().resolve()
    try:
        path.write_text(body, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {path}: {exc.strerror}") from None
    return path


def _render(eng: Engine, fmt: str, view: str | None, limit: int | None) -> str:
    if view is not None:
        with eng.connect() as conn:
            columns = view_columns(conn, view)
            rows = read_view(conn, view, limit=limit)
        if fmt == "csv":
            return data.to_csv(rows, columns)
        if fmt == "json":
            return data.to_json(rows)
        return text.view_text(rows, columns)
    s = summary.build(eng)
    if fmt == "html":
        return page.page(s)
    if fmt == "json":
        return data.to_json(s)
    return text.summary_text(s) + "\n"
