"""`alembic upgrade head` from the repo root (documented beside `veeam-etl migrate`) leaves a warehouse
`veeam-etl report` can read: the reporting views are re-created after a command that moves the
revision, dropped before it (a downgrade to base works), and left alone by `alembic current`."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import inspect

from etl import db, views
from helpers import ROOT, cli, cli_env


def _alembic(db_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(VEEAM_ETL_DB=db_url),
        stdin=subprocess.DEVNULL,
    )


def _views(eng) -> set[str]:
    return set(inspect(eng).get_view_names()) & set(views.names(eng.dialect.name))


def test_alembic_upgrade_head_creates_the_views_report_reads(db_url):
    eng = db.engine(db_url)
    every = set(views.names(eng.dialect.name))
    done = _alembic(db_url, "upgrade", "head")
    assert done.returncode == 0, done.stderr
    assert db.current(eng) == db.head() and _views(eng) == every
    report = cli("report", "--db", db_url)
    assert report.returncode == 0 and "Veeam backup & replication report" in report.stdout, report.stderr

    assert _alembic(db_url, "current").returncode == 0
    assert _views(eng) == every

    done = _alembic(db_url, "downgrade", "base")
    assert done.returncode == 0, done.stderr
    assert db.current(eng) is None and _views(eng) == set()
    assert _alembic(db_url, "upgrade", "head").returncode == 0
    assert _views(eng) == every
    migrate = cli("migrate", "--db", db_url)  # etl.db's own path through the same env.py
    assert migrate.returncode == 0, migrate.stderr
    assert _views(eng) == every
    eng.dispose()


def test_alembic_check_finds_the_migrations_and_the_schema_in_step(db_url):
    """`alembic check`: autogenerate, run against a warehouse at head, finds nothing to migrate."""
    assert _alembic(db_url, "upgrade", "head").returncode == 0
    done = _alembic(db_url, "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No new upgrade operations detected" in done.stdout + done.stderr
