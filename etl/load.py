"""Upsert rows into the warehouse keyed by uid: SQLAlchemy Core, dialect-aware, parents first.

Compares each batch with what the warehouse holds and writes only new or changed rows, so a rerun
over unchanged data writes nothing and `updated` means "a value changed". Knows no HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from . import schema
from .errors import ConfigError

CHUNK = 500  # uids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


def data_columns(table: Table) -> list[str]:
    return [c.name for c in table.columns if c.name not in schema.META_COLUMNS]


def _insert(conn: Connection, table: Table):
    name = conn.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise ConfigError(f"unsupported warehouse dialect {name!r}: use SQLite or PostgreSQL")


class Loader:
    """Writes batches for one run; the caller owns the transaction."""

    def __init__(self, conn: Connection, source: str, run_id: int, now: datetime):
        self.conn, self.source, self.run_id, self.now = conn, source, run_id, now
        self._statements: dict[str, object] = {}

    def existing(self, table: Table, uids: Iterable[str]) -> dict[str, tuple]:
        """{uid: row of data columns} for those uids the warehouse already holds."""
        cols = [table.c[name] for name in data_columns(table)]
        found: dict[str, tuple] = {}
        uids = list(uids)
        for i in range(0, len(uids), CHUNK):
            chunk = uids[i : i + CHUNK]
            for row in self.conn.execute(select(*cols).where(table.c.uid.in_(chunk))):
                found[row[0]] = tuple(row)
        return found

    def present(self, table: Table, uids: Iterable[str]) -> set[str]:
        uids = list(uids)
        found: set[str] = set()
        for i in range(0, len(uids), CHUNK):
            chunk = uids[i : i + CHUNK]
            found.update(self.conn.scalars(select(table.c.uid).where(table.c.uid.in_(chunk))))
        return found

    def upsert(self, table: Table, rows: list[dict]) -> tuple[int, int]:
        """Insert new uids, update changed ones; returns (inserted, updated)."""
        if not rows:
            return 0, 0
        names = data_columns(table)
        batch = {row["uid"]: row for row in rows}  # one statement never carries a key twice
        old = self.existing(table, batch)
        writes, inserted, updated = [], 0, 0
        for uid, row in batch.items():
            values = tuple(row.get(name) for name in names)
            before = old.get(uid)
            if before is None:
                inserted += 1
            elif row.get("placeholder") or before == values:
                continue  # unchanged, or a link-only record never overwrites what we know
            else:
                updated += 1
            record = dict(zip(names, values, strict=True))
            record.update(source=self.source, first_loaded_at=self.now, last_loaded_at=self.now, run_id=self.run_id)
            writes.append(record)
        if writes:
            self.conn.execute(self._upsert_statement(table), writes)
        return inserted, updated

    def _upsert_statement(self, table: Table):
        stmt = self._statements.get(table.name)
        if stmt is None:
            ins = _insert(self.conn, table)
            keep = {"uid", "first_loaded_at"}
            stmt = ins.on_conflict_do_update(
                index_elements=[table.c.uid],
                set_={c.name: ins.excluded[c.name] for c in table.columns if c.name not in keep},
            )
            self._statements[table.name] = stmt
        return stmt
