"""Alembic owns the schema: upgrade an empty warehouse, autogenerate finds no difference, down and up again."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from etl import db, schema, views


def _diff(eng):
    with eng.connect() as conn:
        return compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), schema.metadata
        )


def test_upgrade_empty_then_no_autogenerate_diff(db_url):
    eng = db.engine(db_url)
    db.migrate(eng)
    assert db.current(eng) == db.head()
    assert _diff(eng) == []
    names = set(inspect(eng).get_table_names())
    assert {t.name for t in schema.metadata.sorted_tables} <= names
    with eng.connect() as conn:
        assert (
            conn.scalar(select(schema.etl_settings.c.value).where(schema.etl_settings.c.key == "rpo_hours"))
            == "24"
        )
    assert set(views.names(eng.dialect.name)) <= set(inspect(eng).get_view_names())
    eng.dispose()


def test_downgrade_to_base_and_up_again(db_url):
    eng = db.engine(db_url)
    db.migrate(eng)
    cfg = db.alembic_config()
    with eng.begin() as conn:
        views.drop(conn)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert not (set(inspect(eng).get_table_names()) & {"backup_servers", "etl_runs"})
    db.migrate(eng)
    assert _diff(eng) == []
    eng.dispose()


def test_sqlite_enforces_foreign_keys(tmp_path):
    eng = db.engine(f"sqlite:///{tmp_path}/fk.db")
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    eng.dispose()
