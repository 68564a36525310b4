"""The throwaway PostgreSQL server used by the test suite really starts, works, and cleans up."""

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
import sqlalchemy as sa

try:
    from tests.pgserver import PostgresServer, available
except ImportError:  # tests/ is on sys.path (pytest rootdir-less "prepend" import mode)
    from pgserver import PostgresServer, available


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_binaries_available():
    ok, why = available()
    assert ok, why


def test_server_roundtrip_and_cleanup():
    pg = PostgresServer()
    with pg:
        assert os.path.isdir(pg.tmpdir)
        assert _accepts(pg.port)
        assert pg.admin_url == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/postgres"
        tmpdir, port = pg.tmpdir, pg.port

        pg.create_role("etl_user", password="not-a-secret")
        pg.create_database("x", owner="etl_user")
        engine = sa.create_engine(pg.url("x"))
        try:
            md = sa.MetaData()
            t = sa.Table(
                "ev",
                md,
                sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            )
            md.create_all(engine)
            with engine.connect() as conn:
                col_type = conn.execute(
                    sa.text(
                        "SELECT data_type FROM information_schema.columns WHERE table_name='ev' AND column_name='at'"
                    )
                ).scalar_one()
                assert col_type == "timestamp with time zone"
            aware = datetime(2024, 3, 31, 1, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
            with engine.begin() as conn:
                conn.execute(t.insert(), [{"id": 1, "at": aware}])
            with engine.connect() as conn:
                got = conn.execute(sa.select(t.c.at)).scalar_one()
            assert got.tzinfo is not None and got.utcoffset() is not None
            assert got == aware
            assert got.astimezone(UTC) == aware.astimezone(UTC)
        finally:
            engine.dispose()

        with psycopg.connect(pg.psql_dsn("x")) as conn:
            assert conn.execute("SELECT count(*) FROM ev").fetchone()[0] == 1
        pg.drop_database("x")
        with psycopg.connect(pg.psql_dsn("postgres")) as conn:
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname='x'").fetchone() is None

    assert pg.tmpdir is None
    assert not os.path.exists(tmpdir)
    assert not _accepts(port)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=2")
    pg.stop()  # idempotent


def test_unavailable_reports_what_was_searched(monkeypatch, tmp_path):
    monkeypatch.setenv("PG_BIN", str(tmp_path))
    ok, why = available()
    assert not ok and "PG_BIN" in why
    with pytest.raises(RuntimeError, match="not found"):
        PostgresServer().start()


def test_atexit_stops_server_left_running(tmp_path):
    """A session that exits without stop() must not leave postgres (or its temp dir) behind."""
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); from pgserver import PostgresServer\n"
        "pg = PostgresServer().start(); print(pg.port, pg.tmpdir, flush=True)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    port, tmpdir = int(out[0]), out[1]
    assert not os.path.exists(tmpdir)
    assert not _accepts(port)
