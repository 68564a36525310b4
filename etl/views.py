"""Reporting views: one `CREATE VIEW` per file in sql/, re-created by `migrate`.

`sql/<view>.sql` serves every dialect; `sql/<view>.<dialect>.sql` (e.g. `.postgresql.sql`) wins
where a dialect needs its own text. Views are dropped before a schema upgrade and created after.
"""

from __future__ import annotations

import re
from importlib import resources

from sqlalchemy import Connection, Engine, text

_CREATE = re.compile(r"^\s*CREATE\s+VIEW\s+(\w+)", re.IGNORECASE | re.MULTILINE)


def definitions(dialect: str) -> dict[str, str]:
    """{view name: CREATE VIEW statement} for `dialect`, in file-name order."""
    files = sorted(f for f in resources.files("etl.sql").iterdir() if f.name.endswith(".sql"))
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


def drop(conn: Connection) -> None:
    for name in reversed(names(conn.dialect.name)):
        conn.execute(text(f"DROP VIEW IF EXISTS {name}"))


def create(eng: Engine) -> None:
    """Drop and re-create every reporting view in one transaction."""
    with eng.begin() as conn:
        drop(conn)
        for sql in definitions(conn.dialect.name).values():
            conn.execute(text(sql))
