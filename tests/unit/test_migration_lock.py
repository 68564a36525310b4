"""Migrations wait for one another through a database lock and give up with LockHeld (exit 75)."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from etl import db
from etl.errors import LockHeld


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
