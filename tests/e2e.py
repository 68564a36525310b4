"""Helpers for end-to-end tests: dump the warehouse in the ground truth's shape, and compare."""

from __future__ import annotations

from sqlalchemy import Engine, select

from etl import schema
from etl.load import data_columns


def dump(eng: Engine, with_meta: bool = False) -> dict[str, dict[str, dict]]:
    """{table: {uid: row}} of the entity tables (data columns; all columns with `with_meta`)."""
    out = {}
    with eng.connect() as conn:
        for table in schema.ENTITY_TABLES:
            cols = list(table.columns) if with_meta else [table.c[n] for n in data_columns(table)]
            out[table.name] = {r["uid"]: dict(r) for r in conn.execute(select(*cols)).mappings()}
    return out


def assert_equal_to_truth(eng: Engine, truth: dict[str, dict[str, dict]]) -> None:
    got = dump(eng)
    for table, rows in truth.items():
        have = got[table]
        missing = sorted(set(rows) - set(have))[:3]
        extra = sorted(set(have) - set(rows))[:3]
        assert not missing and not extra, f"{table}: missing {missing}, unexpected {extra}"
        for uid, expected in rows.items():
            row = have[uid]
            diff = {k: (row.get(k), v) for k, v in expected.items() if row.get(k) != v}
            assert not diff, f"{table} {uid}: (warehouse, truth) differ: {diff}"
