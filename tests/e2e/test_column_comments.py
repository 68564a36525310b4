"""`veeam-etl migrate` leaves every table's and column's meaning in PostgreSQL's catalog, where psql
(`\\d+`) and BI tools read it: exactly the comments etl.schema declares, for every table and column."""

from __future__ import annotations

import pytest

from etl import db, schema
from helpers import catalog_comments, cli, declared_comments


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_migrate_stores_every_declared_comment_in_the_postgresql_catalog(db_url):
    done = cli("migrate", "--db", db_url)
    assert done.returncode == 0, done.stderr
    eng = db.engine(db_url)
    try:
        with eng.connect() as conn:
            stored = catalog_comments(conn)
    finally:
        eng.dispose()
    declared = declared_comments()
    assert len(declared) == len(schema.metadata.tables) + sum(
        len(t.columns) for t in schema.metadata.tables.values()
    )
    assert stored == declared
    assert None not in stored.values()
