"""Migrations wait for one another through a database lock and give up with LockHeld (exit 75); a
migration the warehouse refuses is rolled back and is a MigrationError (exit 1), not a LockHeld or a
refused batch."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from etl import db
from etl.errors import LockHeld, MigrationError
from helpers import cli


def test_a_migration_held_elsewhere_ends_in_lock_held(db_url, monkeypatch):
    monkeypatch.setattr(db, "MIGRATION_WAIT_S", 1)
    holder, waiter = db.engine(db_url), db.engine(db_url)
    with db.migration_lock(holder):
        with pytest.raises(
            LockHeld, match="another process has been migrating warehouse .* for 1 s"
        ) as caught:
            db.ensure_current(waiter)
        assert caught.value.exit_code == 75
    assert db.current(waiter) is None and "etl_runs" not in inspect(waiter).get_table_names()
    db.ensure_current(waiter)  # released: now it migrates
    assert db.current(waiter) == db.head()
    holder.dispose()
    waiter.dispose()


def test_a_migration_that_fails_leaves_nothing_behind(db_url, monkeypatch):
    """The whole upgrade is one transaction, on SQLite too (no half-created schema for the next run)."""
    eng = db.engine(db_url)

    def broken(conn):
        raise RuntimeError("views failed")

    monkeypatch.setattr(db, "create_views", broken)
    with pytest.raises(RuntimeError):
        db.migrate(eng)
    assert db.current(eng) is None and inspect(eng).get_table_names() == []
    eng.dispose()


def test_a_migration_the_warehouse_refuses_is_a_migration_error(db_url):
    eng = db.engine(db_url)
    with eng.begin() as conn:  # a table of the same name as one the first migration creates
        conn.execute(text("CREATE TABLE etl_runs (kept INTEGER)"))
        conn.execute(text("INSERT INTO etl_runs (kept) VALUES (7)"))
    with pytest.raises(MigrationError, match=r"^migrating .* failed: \w+Error: .*etl_runs") as caught:
        db.migrate(eng)
    assert caught.value.exit_code == 1
    assert db.current(eng) is None  # rolled back: the warehouse is as it was
    with eng.connect() as conn:
        assert conn.execute(text("SELECT kept FROM etl_runs")).all() == [(7,)]
    eng.dispose()
    if db_url.startswith("sqlite"):  # the command: one line, exit 1
        done = cli("migrate", "--db", db_url)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.startswith("veeam-etl: error: migrating sqlite:///") and "etl_runs" in done.stderr
