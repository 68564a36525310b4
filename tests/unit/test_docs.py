"""docs/warehouse.md is generated from etl.schema and the views: it must match what the generator prints."""

from __future__ import annotations

import importlib.util
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import insert

from etl import db, registry, report, schema, views
from etl.simulator import World

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "python scripts/datadict.py > docs/warehouse.md"


def _datadict():
    spec = importlib.util.spec_from_file_location("datadict", ROOT / "scripts" / "datadict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_data_dictionary_is_in_sync():
    committed = (ROOT / "docs" / "warehouse.md").read_text(encoding="utf-8")
    assert committed == _datadict().render(), f"docs/warehouse.md is out of date: run `{REGENERATE}`"


def test_every_table_and_view_column_has_a_meaning():
    dd = _datadict()
    missing = [
        f"{t.name}.{c.name}"
        for t in schema.metadata.sorted_tables
        for c in t.columns
        if dd.meaning(t.name, c.name) == dd.MISSING
    ]
    missing += [t.name for t in schema.metadata.sorted_tables if t.name not in dd.TABLES]
    for view, columns in dd.view_columns().items():
        missing += [f"{view}.{c}" for c in columns if dd.view_meaning(view, c) == dd.MISSING]
    assert not missing, f"add meanings to scripts/datadict.py, then run `{REGENERATE}`: {missing}"


def test_dictionary_lists_every_public_view_and_table():
    text = (ROOT / "docs" / "warehouse.md").read_text(encoding="utf-8")
    for name in list(report.VIEWS) + [t.name for t in schema.metadata.sorted_tables]:
        assert f"### {name}\n" in text, name
    assert set(report.VIEWS) == {n for n in views.names("postgresql") if not n.startswith("v__")}
    for phrase in ("Retries folded in", "CURRENT_TIMESTAMP", "rpo_hours", "ORDER BY occurred_utc DESC"):
        assert phrase in text, phrase


def test_bi_guide_uses_the_views_and_a_read_only_role():
    text = (ROOT / "docs" / "bi.md").read_text(encoding="utf-8")
    for phrase in (
        "CREATE ROLE veeam_bi",
        "GRANT USAGE ON SCHEMA",
        "GRANT SELECT ON ALL TABLES",
        "ALTER DEFAULT PRIVILEGES",
        "Grafana",
        "Metabase",
        "Superset",
    ):
        assert phrase in text, phrase
    for view in ("v_replica_job_daily", "v_vm_replica_status", "v_replica_transfer_daily"):
        assert view in text, view


def _sql_blocks(markdown: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```sql\n(.*?)```", markdown, re.DOTALL)]


def test_bi_guide_sql_runs_on_postgresql_as_the_read_only_role(pg):
    """The role recipe works as written (also after `migrate` re-creates the views) and every
    example query runs as that role; Grafana macros ($__…) are left to Grafana."""
    tag = uuid.uuid4().hex[:8]
    owner, bi, dbname = f"veeam_etl_{tag}", f"veeam_bi_{tag}", f"veeam_{tag}"
    blocks = _sql_blocks((ROOT / "docs" / "bi.md").read_text(encoding="utf-8"))
    role_sql, queries = blocks[0], [b for b in blocks[1:] if "$__" not in b]
    assert "CREATE ROLE veeam_bi" in role_sql and len(queries) >= 4
    pg.create_role(owner)
    pg.create_database(dbname, owner=owner)
    try:
        eng = db.engine(pg.url(dbname, owner))
        db.migrate(eng)
        now = datetime.now(UTC).replace(microsecond=0)
        truth = World(
            seed=4, jobs=2, vms_per_job=3, days=3, now=now - timedelta(hours=30)
        ).truth()  # breaches
        meta = {"source": "docs", "first_loaded_at": now, "last_loaded_at": now}
        with eng.begin() as conn:
            meta["run_id"] = conn.execute(
                insert(schema.etl_runs)
                .values(source="docs", started_at=now, status="succeeded", mode="full")
                .returning(schema.etl_runs.c.id)
            ).scalar()
            for table in registry.tables():
                conn.execute(insert(table), [{**r, **meta} for r in truth[table.name].values()])
        setup = (
            role_sql.replace("veeam_bi", bi)
            .replace("veeam_etl", owner)
            .replace("DATABASE veeam ", f"DATABASE {dbname} ")
        )
        with psycopg.connect(pg.psql_dsn(dbname), autocommit=True) as admin:
            for statement in filter(None, (s.strip() for s in setup.split(";"))):
                admin.execute(statement)
        db.migrate(eng)  # drops and re-creates the views: the default privileges must cover them
        eng.dispose()
        with psycopg.connect(pg.psql_dsn(dbname, bi)) as reader:
            for query in queries:
                rows = reader.execute(query.rstrip().rstrip(";")).fetchall()
                assert rows, query
                reader.rollback()
            with pytest.raises(psycopg.Error):
                reader.execute("UPDATE etl_settings SET value = '1' WHERE key = 'rpo_hours'")
    finally:
        pg.drop_database(dbname)
        with psycopg.connect(pg.psql_dsn("postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(bi)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(owner)))
