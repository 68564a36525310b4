"""Shared fixtures: a warehouse URL on SQLite and on a real, throwaway PostgreSQL server.

Every test that takes `db_url` runs on both databases. A missing PostgreSQL fails the test run
(never a skip): `.ci/run` installs the server binaries on a fresh machine.
"""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class Trap:
    """An HTTP listener standing in for another origin or any host a hostile document names.

    It records every request that reaches it (a passing test leaves `hits` empty) and answers with
    an entity declaration, so a parser that did fetch it would visibly expand TRAP-WAS-READ.
    """

    BODY = b'<!ENTITY leaked "TRAP-WAS-READ">'

    def __init__(self):
        hits = self.hits = []
        body = self.BODY

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - fixed by the base class
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.origin = f"http://{self.host}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def trap():
    t = Trap()
    yield t
    t.close()
