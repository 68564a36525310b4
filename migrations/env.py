"""Alembic environment: target_metadata from etl.schema; the URL from VEEAM_ETL_DB.

`veeam-etl migrate` passes its own connection in config.attributes["connection"]; the alembic CLI
opens one from VEEAM_ETL_DB (default sqlite:///veeam.db). SQLite runs in batch mode.
"""

import os

from alembic import context

from etl import db, schema

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


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    eng = db.engine(
        os.environ.get("VEEAM_ETL_DB", "sqlite:///veeam.db"), os.environ.get("VEEAM_ETL_DB_SCHEMA")
    )
    with eng.begin() as conn:
        _run(conn)
    eng.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: run against a database")
run_migrations_online()
