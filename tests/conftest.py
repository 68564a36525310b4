"""Shared fixtures: a warehouse URL on SQLite and on a real, throwaway PostgreSQL server.

Every test that takes `db_url` runs on both databases. A missing PostgreSQL fails the test run
(never a skip): `.ci/run` installs the server binaries on a fresh machine.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import pgserver

PAYLOADS = Path(__file__).parent / "payloads"


@pytest.fixture(scope="session")
def pg():
    ok, why = pgserver.available()
    if not ok:
        pytest.fail(f"PostgreSQL is required for the test suite: {why}")
    with pgserver.PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
        return
    server = request.getfixturevalue("pg")
    name = f"w_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def payload():
    def read(name: str) -> bytes:
        return (PAYLOADS / name).read_bytes()

    return read
