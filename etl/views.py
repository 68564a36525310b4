"""Reporting views: one `CREATE VIEW` per file in sql/ (`<view>.<dialect>.sql` wins where a dialect
needs its own text), dropped before a schema upgrade and re-created by `migrate` (etl.db), in
file-name order: helpers `v__*` before public `v_*` views. Each public view's `-- order:` line says
how its rows are read (`public()`). Imports nothing else of etl."""

from __future__ import annotations

import re
from importlib import resources

from sqlalchemy import Connection, text

_CREATE = re.compile(r"^\s*CREATE\s+VIEW\s+(\w+)", re.IGNORECASE | re.MULTILINE)
_ORDER = re.compile(r"^--\s*order:\s*(.+?)\s*$", re.MULTILINE)
DIALECTS = ("postgresql", "sqlite")
HELPER_PREFIX = "v__"


def definitions(dialect: str) -> dict[str, str]:
    """{view name: CREATE VIEW statement} for `dialect`, in file-name order."""
    files = sorted(
        (f for f in resources.files("etl.sql").iterdir() if f.name.endswith(".sql")), key=lambda f: f.name
    )
    chosen: dict[str, str] = {}
    for f in files:
        stem, _, rest = f.name.partition(".")
        variant = rest[: -len("sql")].rstrip(".")
        if variant and variant != dialect:
            continue
        if variant or stem not in chosen:
            chosen[stem] = f.read_text(encoding="utf-8")
    return chosen


def names(dialect: str) -> list[str]:
    out = []
    for sql in definitions(dialect).values():
        m = _CREATE.search(sql)
        if m:
            out.append(m.group(1))
    return out


def public() -> dict[str, str]:
    """{public view name: the ORDER BY list its rows are read in}, in file-name order: every view not
    named `v__*`, from its `-- order:` line. Raises ValueError when a public view has no order line or
    the dialects disagree on which public views exist."""
    found: dict[str, dict[str, str]] = {}
    for dialect in DIALECTS:
        views: dict[str, str] = {}
        for sql in definitions(dialect).values():
            m = _CREATE.search(sql)
            if not m or m.group(1).startswith(HELPER_PREFIX):
                continue
            order = _ORDER.search(sql[: m.start()])
            if order is None:
                raise ValueError(f"sql/ view {m.group(1)} has no '-- order: ...' line")
            views[m.group(1)] = order.group(1)
        found[dialect] = views
    first, *others = found.values()
    for other in others:
        if list(other) != list(first):
            raise ValueError(f"the dialects disagree on the public views: {list(first)} / {list(other)}")
    return first


def drop(conn: Connection) -> None:
    for name in reversed(names(conn.dialect.name)):
        conn.execute(text(f"DROP VIEW IF EXISTS {name}"))
