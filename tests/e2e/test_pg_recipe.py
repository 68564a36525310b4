"""The README's PostgreSQL recipe and docs/bi.md's read-only role, pasted as written: the SQL blocks run
through psql as the superuser, then `veeam-etl` runs the README's commands as the unprivileged loading
role (no --db-schema), and the BI role reads every example query and can write nothing.

The SQL and the commands are read from the documents, so editing them without keeping them working
fails this test."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import inspect, text

from etl import db
from etl.simulator import Simulator, World
from helpers import add_backup_estate, assert_equal_to_truth, cli

ROOT = Path(__file__).resolve().parents[2]


def _section(markdown: str, heading: str) -> str:
    """The text of the `## heading` section."""
    start = markdown.index(f"\n## {heading}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end > 0 else None]


def _blocks(markdown: str, lang: str) -> list[str]:
    """The fenced `lang` code blocks, dedented (a block may sit in a list item)."""
    found = re.findall(rf"^([ \t]*)```{lang}\n(.*?)^\1```", markdown, re.MULTILINE | re.DOTALL)
    return [textwrap.dedent(body) for _, body in found]


def _psql(pg, script: str) -> None:
    """`script` through psql as the superuser, stopping at the first error, like pasting it."""
    done = subprocess.run(
        [os.path.join(pg.bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg.psql_dsn("postgres")],
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{done.stderr}\n--- script ---\n{script}"


def _commands(shell: str) -> list[list[str]]:
    """The `veeam-etl …` lines of a shell block, as argument lists without the program name."""
    lines = [shlex.split(line, comments=True) for line in shell.splitlines()]
    return [words[1:] for words in lines if words and words[0] == "veeam-etl"]


def _drop_everything(pg) -> None:
    with psycopg.connect(pg.psql_dsn("postgres"), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS veeam WITH (FORCE)")
        for role in ("veeam_bi", "veeam_etl"):
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def recipe_cluster(pg):
    """The test server with no `veeam` database or roles before and after the test."""
    _drop_everything(pg)
    yield pg
    _drop_everything(pg)


def test_readme_postgresql_recipe_then_bi_role_as_written(recipe_cluster):
    pg = recipe_cluster
    readme = _section((ROOT / "README.md").read_text(encoding="utf-8"), "PostgreSQL warehouse")
    [setup_sql] = _blocks(readme, "sql")
    _psql(pg, setup_sql)

    documented = re.search(r"export VEEAM_ETL_DB='([^']+)'", readme).group(1)
    url = documented.replace("db01.example.com:5432", f"127.0.0.1:{pg.port}")  # trust auth: any password
    assert url != documented and "veeam_etl" in url
    commands = _commands("\n".join(_blocks(readme, "sh")))
    assert [c[0] for c in commands] == ["migrate", "run", "report"], commands

    now = datetime.now(UTC).replace(microsecond=0)
    world = World(seed=4, jobs=2, vms_per_job=3, days=3, now=now - timedelta(hours=30))  # RPO breaches
    with Simulator(world) as sim:
        for args in commands:
            if args[0] == "run":
                args = [*args]
                args[args.index("--url") + 1] = sim.url
                args[args.index("--user") + 1] = "demo"
            done = cli(*args, VEEAM_ETL_DB=url)
            assert done.returncode == 0, f"veeam-etl {shlex.join(args)}: {done.stderr}"
        assert "Veeam backup & replication report" in done.stdout
        assert cli("status", VEEAM_ETL_DB=url).returncode == 0

    admin = db.engine(pg.url("veeam"))
    assert "replica_task_sessions" in inspect(admin).get_table_names(schema="veeam")
    assert "v_vm_replica_status" in inspect(admin).get_view_names(schema="veeam")
    assert inspect(admin).get_table_names(schema="public") == []
    with admin.connect() as conn:
        owners = set(conn.scalars(text("SELECT tableowner FROM pg_tables WHERE schemaname = 'veeam'")))
        assert owners == {"veeam_etl"}
        assert not conn.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = 'veeam_etl'"))
    admin.dispose()
    truth_eng = db.engine(pg.url("veeam"), "veeam")
    assert_equal_to_truth(truth_eng, world.truth())
    # a backup side on which every backup query of docs/bi.md has rows, whatever the simulated EM holds
    add_backup_estate(truth_eng, datetime.now(UTC))
    truth_eng.dispose()

    bi_doc = (ROOT / "docs" / "bi.md").read_text(encoding="utf-8")
    role_sql, *examples = _blocks(bi_doc, "sql")
    queries = [q for q in examples if "$__" not in q]  # Grafana macros are Grafana's
    assert "CREATE ROLE veeam_bi" in role_sql and len(queries) >= 4
    _psql(pg, role_sql)
    assert cli("migrate", VEEAM_ETL_DB=url).returncode == 0  # re-creates the views: still readable

    with psycopg.connect(pg.psql_dsn("veeam", "veeam_bi")) as reader:
        for query in queries:
            assert reader.execute(query.strip().rstrip(";")).fetchall(), query
            reader.rollback()
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            reader.execute("UPDATE etl_settings SET value = '1' WHERE key = 'rpo_hours'")
        reader.rollback()
        reader.execute("SET TRANSACTION READ WRITE")  # the role setting is only the first guard
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("UPDATE etl_settings SET value = '1' WHERE key = 'rpo_hours'")
        reader.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("SET TRANSACTION READ WRITE")
            reader.execute("CREATE TABLE mine (x int)")
