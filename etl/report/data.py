"""The report as data for other programs: a view's rows as CSV (`to_csv`), and a view's rows or the
summary as JSON (`to_json`). Column names and JSON keys are the views' own and the Summary's fields;
instants are ISO 8601 ending in Z, dates YYYY-MM-DD.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import fields, is_dataclass
from datetime import UTC, date, datetime

from .read import Row


def text_of(value) -> str:
    """A cell as text for CSV and JSON: ISO 8601 instants ending in Z, dates as YYYY-MM-DD."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def to_csv(rows: list[Row], columns: list[str] | None = None) -> str:
    """`rows` as CSV with a header line: `columns` (default the first row's keys), one line a row."""
    columns = columns or (list(rows[0]) if rows else [])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([text_of(r.get(c)) for c in columns])
    return buf.getvalue()


def _plain(value):
    """`value` with every dataclass in it (the Summary, its tiles and jobs) as a dict of its fields in
    their order; view rows and everything else as they are."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _json_default(value):
    if isinstance(value, datetime | date):
        return text_of(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(data) -> str:
    """`data` (view rows, or a Summary) as indented JSON, non-ASCII text as is."""
    return json.dumps(_plain(data), indent=2, default=_json_default, ensure_ascii=False) + "\n"
