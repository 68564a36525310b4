"""Upsert rows into the warehouse keyed by uid (SQLite and PostgreSQL): only new or changed rows are
written, so a rerun over unchanged data writes nothing and `updated` means "a value changed"; on
SQLite multi-row `INSERT … ON CONFLICT (uid) DO UPDATE`, on PostgreSQL COPY into a staging table and
one merge. Knows no HTTP; the caller owns the transaction.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Connection, Table
from sqlalchemy.exc import DBAPIError

from . import chunks, schema
from .errors import ConfigError, LoadError
from .transform import TableRows

KEEP_ON_UPDATE = frozenset({"uid", "first_loaded_at"})


def data_columns(table: Table) -> list[str]:
    return [c.name for c in table.columns if c.name not in schema.META_COLUMNS]


def _sqlite_value(value):
    """What SQLAlchemy's SQLite DateTime stores (UTC text with microseconds); booleans as 0/1."""
    if isinstance(value, datetime):
        if value.tzinfo is UTC:  # what the transform gives: "YYYY-MM-DD HH:MM:SS.ffffff+00:00"
            return value.isoformat(" ", "microseconds")[:26]
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(value, bool):
        return int(value)
    return value


def _sqlite_instants(values) -> list:
    """A column of instants as SQLite stores them: UTC text with microseconds."""
    return [
        None if v is None else v.isoformat(" ", "microseconds")[:26] if v.tzinfo is UTC else _sqlite_value(v)
        for v in values
    ]


def _sqlite_booleans(values) -> list:
    return [None if v is None else int(v) for v in values]


class _Statements:
    """SQL text for one table in one dialect, built once."""

    def __init__(self, table: Table, dialect: str, paramstyle: str):
        if dialect not in ("sqlite", "postgresql"):
            raise ConfigError(f"unsupported warehouse dialect {dialect!r}: use SQLite or PostgreSQL")
        self.mark = "?" if paramstyle == "qmark" else "%s"
        self.table = table
        self.data = data_columns(table)
        self.key = self.data.index("uid")
        # columns whose Python values SQLite stores differently (instants, booleans), with how
        self.typed = [
            (i, _sqlite_instants if isinstance(table.c[name].type, schema.UTCDateTime) else _sqlite_booleans)
            for i, name in enumerate(self.data)
            if isinstance(table.c[name].type, (schema.UTCDateTime, Boolean))
        ]
        self.columns = self.data + list(schema.META_COLUMNS)
        # columns the loader fills itself (a lookup, an inference): EM's NULL never overwrites them
        self.kept = frozenset(i for i, name in enumerate(self.data) if table.c[name].info.get("kept"))
        updates = ", ".join(
            f"{c} = COALESCE(excluded.{c}, {table.name}.{c})"
            if table.c[c].info.get("kept")
            else f"{c} = excluded.{c}"
            for c in self.columns
            if c not in KEEP_ON_UPDATE
        )
        # what a column the rows lack is written as: its scalar default, else NULL
        self.defaults = [
            getattr(c.default, "arg", None) if c.default is not None and c.default.is_scalar else None
            for c in (table.c[name] for name in self.data)
        ]
        names = ", ".join(self.columns)
        self._group = f"({', '.join([self.mark] * len(self.columns))})"
        self._insert = f"INSERT INTO {table.name} ({names}) VALUES "
        self._conflict = f" ON CONFLICT (uid) DO UPDATE SET {updates}"
        self.upsert = self.upsert_rows(1)
        # SQLite bulk path: one multi-row INSERT per chunk (SQLite allows 32766 parameters).
        # executemany would step once per row and hand the GIL back and forth each time.
        self.rows_per_statement = 32766 // len(self.columns)
        # PostgreSQL bulk path: COPY into a per-session staging table, then one merge statement.
        self.stage = f"veeam_etl_stage_{table.name}"
        self.create_stage = (
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.stage} "
            f"(LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        self.copy = f"COPY {self.stage} ({names}) FROM STDIN"
        self.merge = (
            f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {self.stage} "
            f"ON CONFLICT (uid) DO UPDATE SET {updates}"
        )

    def upsert_rows(self, count: int) -> str:
        """`INSERT … VALUES (…), (…) … ON CONFLICT (uid) DO UPDATE …` for `count` rows."""
        return self._insert + ", ".join([self._group] * count) + self._conflict

    def select_in(self, columns: list[str], count: int) -> str:
        return (
            f"SELECT {', '.join(columns)} FROM {self.table.name} "
            f"WHERE uid IN ({', '.join([self.mark] * count)})"
        )


def _driver_errors() -> tuple[type[BaseException], ...]:
    """Errors the PostgreSQL bulk path raises from the driver directly (outside SQLAlchemy)."""
    try:
        import psycopg
    except ImportError:
        return ()
    return (psycopg.Error,)


@functools.cache
def _statements(table: Table, dialect: str, paramstyle: str) -> _Statements:
    return _Statements(table, dialect, paramstyle)


class Loader:
    """Writes rows for one run; the caller owns the transaction."""

    def __init__(
        self, conn: Connection, source: str, run_id: int, now: datetime, fresh: frozenset[str] = frozenset()
    ):
        """`fresh` names tables that were empty when the run started: their rows need no comparison."""
        self.conn, self.source, self.run_id, self.fresh = conn, source, run_id, fresh
        self._convert = _sqlite_value if conn.dialect.name == "sqlite" else None
        meta = tuple(schema.meta_values(source, run_id, now).values())
        self._meta = tuple(map(self._convert, meta)) if self._convert else meta

    def _statements(self, table: Table) -> _Statements:
        return _statements(table, self.conn.dialect.name, self.conn.dialect.paramstyle)

    def _select(self, st: _Statements, columns: list[str], uids: list[str]) -> list[tuple]:
        found: list[tuple] = []
        for chunk in chunks(uids, schema.IN_LIST):
            found.extend(self.conn.exec_driver_sql(st.select_in(columns, len(chunk)), tuple(chunk)).all())
        return found

    def present(self, table: Table, uids: Iterable[str]) -> set[str]:
        """Those of `uids` the warehouse already holds."""
        return {row[0] for row in self._select(self._statements(table), ["uid"], list(uids))}

    def upsert(self, rows: TableRows) -> tuple[int, int]:
        """Insert new uids, update changed ones; returns (inserted, updated).

        A placeholder (a parent recorded only from a link) is inserted when the uid is new and
        never overwrites a row; a real row replaces a placeholder.
        """
        if not rows.values:
            return 0, 0
        table = schema.metadata.tables[rows.table]
        st = self._statements(table)
        ordered = self._driver_rows(st, rows)
        uids = [values[st.key] for values in ordered]
        by_uid = dict(
            zip(uids, ordered, strict=True)
        )  # one statement never carries a key twice: the last wins
        flags = dict(zip(uids, rows.column("placeholder"), strict=True))  # here too
        placeholders = {uid for uid, flag in flags.items() if flag}
        # In a table that was empty at the start of the run every uid is new (placeholders are
        # only written for uids found absent), so the comparison can be skipped.
        fresh = table.name in self.fresh
        old = {} if fresh else {r[st.key]: tuple(r) for r in self._select(st, st.data, list(by_uid))}
        writes, inserted, updated = [], 0, 0
        for uid, values in by_uid.items():
            before = old.get(uid)
            if before is not None and st.kept:
                values = tuple(before[i] if v is None and i in st.kept else v for i, v in enumerate(values))
            if before is None:
                inserted += 1
            elif uid in placeholders or before == values:
                continue
            else:
                updated += 1
            writes.append(values + self._meta)
        if writes:
            refused: tuple[type[BaseException], ...] = (DBAPIError, *_driver_errors())
            try:
                self._write(st, writes)
            except refused as exc:
                cause = getattr(exc, "orig", None) or exc
                raise LoadError(
                    f"writing {len(writes)} rows to {table.name} failed: "
                    f"{type(cause).__name__}: {str(cause).strip()[:500]}"
                ) from None
        return inserted, updated

    def _driver_rows(self, st: _Statements, rows: TableRows) -> list[tuple]:
        """rows.values in the statement's column order and the driver's types; a column the rows
        lack is its default (NULL when it has none). Column by column, so that the loops run in C
        rather than once per row."""
        columns = list(zip(*rows.values, strict=True))
        n = len(rows.values)
        out: list[Iterable] = [
            columns[rows.columns.index(c)] if c in rows.columns else (default,) * n
            for c, default in zip(st.data, st.defaults, strict=True)
        ]
        if self._convert:
            for i, convert in st.typed:
                out[i] = convert(out[i])
        return list(zip(*out, strict=True))

    def _write(self, st: _Statements, writes: list[tuple]) -> None:
        if self.conn.dialect.name != "postgresql":
            step = st.rows_per_statement
            for i in range(0, len(writes), step):
                chunk = writes[i : i + step]
                self.conn.exec_driver_sql(
                    st.upsert_rows(len(chunk)), tuple(itertools.chain.from_iterable(chunk))
                )
            return
        made = self.conn.connection.info.setdefault("veeam_etl_stages", set())
        if st.stage not in made:
            self.conn.exec_driver_sql(st.create_stage)
            made.add(st.stage)
        raw: Any = self.conn.connection.dbapi_connection  # psycopg's connection: COPY is not in DB-API
        with raw.cursor() as cur:
            with cur.copy(st.copy) as copy:
                for row in writes:
                    copy.write_row(row)
            cur.execute(st.merge)
            cur.execute(f"TRUNCATE {st.stage}")  # the next rows written in this transaction start empty
