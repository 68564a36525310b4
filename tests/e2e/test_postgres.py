"""PostgreSQL as the production warehouse: native types, a target schema, alembic from the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect, text

from etl import db
from etl.simulator import Simulator, World
from helpers import assert_equal_to_truth

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEEAM_")}
    env.update(extra)
    return env


def test_native_types(pg):
    pg.create_database("types")
    eng = db.engine(pg.url("types"))
    db.migrate(eng)
    with eng.connect() as conn:
        types = dict(
            conn.execute(
                text(
                    "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'public'"
                )
            ).all()
        )
    assert types["replica_task_sessions.creation_time_utc"] == "timestamp with time zone"
    assert types["replica_job_sessions.end_time_utc"] == "timestamp with time zone"
    assert types["vm_replica_points.creation_time_utc"] == "timestamp with time zone"
    assert types["replica_task_sessions.total_size"] == "bigint"
    assert types["replica_job_sessions.is_retry"] == "boolean"
    assert types["replica_task_sessions.uid"] in ("character varying", "text")
    fks = {
        (fk["constrained_columns"][0], fk["referred_table"])
        for fk in inspect(eng).get_foreign_keys("replica_task_sessions")
    }
    assert fks == {
        ("job_session_uid", "replica_job_sessions"),
        ("backup_server_uid", "backup_servers"),
        ("replica_point_uid", "vm_replica_points"),
    }
    eng.dispose()


def test_cli_migrate_and_run_into_a_target_schema(pg):
    pg.create_database("schemas")
    admin = db.engine(pg.url("schemas"))
    with admin.begin() as conn:
        conn.execute(text("CREATE SCHEMA veeam"))
    url = pg.url("schemas")
    done = subprocess.run(
        [sys.executable, "-m", "etl", "migrate", "--db", url, "--db-schema", "veeam"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "replica_task_sessions" in inspect(admin).get_table_names(schema="veeam")
    assert "replica_task_sessions" not in inspect(admin).get_table_names(schema="public")
    world = World(seed=31, servers=2, jobs=3, vms_per_job=4, days=3)
    with Simulator(world) as sim:
        done = subprocess.run(
            [sys.executable, "-m", "etl", "run", "--url", sim.url, "--user", "demo", "--db", url],
            capture_output=True,
            text=True,
            timeout=300,
            env=_env(VEEAM_EM_PASSWORD="demo", VEEAM_ETL_DB_SCHEMA="veeam"),
        )
        assert done.returncode == 0, done.stderr
        assert_equal_to_truth(db.engine(url, "veeam"), sim.truth())
    admin.dispose()


def test_alembic_cli_upgrade_head_from_repo_root(pg):
    pg.create_database("alembic_cli")
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(VEEAM_ETL_DB=pg.url("alembic_cli")),
    )
    assert done.returncode == 0, done.stderr
    eng = db.engine(pg.url("alembic_cli"))
    assert db.current(eng) == db.head()
    eng.dispose()


def test_password_in_url_is_masked_in_errors(pg):
    url = pg.url("nope").replace("postgres@", "postgres:S3cretPw@").replace(f":{pg.port}/", ":1/")
    done = subprocess.run(
        [sys.executable, "-m", "etl", "status", "--db", url],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert done.returncode != 0
    assert "S3cretPw" not in done.stderr + done.stdout and "Traceback" not in done.stderr
