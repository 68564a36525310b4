"""Alembic environment: target_metadata from etl.schema; the URL from VEEAM_ETL_DB.

`veeam-etl migrate` passes its own connection in config.attributes["connection"] and handles the
migration lock and the reporting views itself (etl.db). The alembic CLI opens a connection from
VEEAM_ETL_DB (default sqlite:///veeam.db) and VEEAM_ETL_DB_SCHEMA; a command that moves the revision
(upgrade, downgrade, stamp) takes the same migration lock, drops the reporting views first and
re-creates them when it ends at head, so `alembic upgrade head` leaves a warehouse `veeam-etl report`
can read. SQLite runs in batch mode.
"""

import os

from alembic import context

from etl import db, schema, views

config = context.config
target_metadata = schema.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _moves_revision() -> bool:
    """Whether this alembic command has a destination revision (upgrade, downgrade, stamp), unlike
    current, check or revision, which must not touch the views."""
    try:
        context.get_revision_argument()
    except KeyError:
        return False
    return True


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    eng = db.engine(
        os.environ.get("VEEAM_ETL_DB", "sqlite:///veeam.db"), os.environ.get("VEEAM_ETL_DB_SCHEMA")
    )
    try:
        if not _moves_revision():
            with eng.begin() as conn:
                _run(conn)
            return
        with db.migration_lock(eng) as conn:
            views.drop(conn)  # SQLite batch migrations rebuild tables that views name
            _run(conn)
            if db.revision(conn) == db.head():
                db.create_views(conn)
    finally:
        eng.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: run against a database")
run_migrations_online()
