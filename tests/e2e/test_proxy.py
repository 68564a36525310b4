"""Enterprise Manager behind a path-prefixed reverse proxy: `--url http://proxy/veeam-em/api`, a proxy
that forwards `/veeam-em/api/*` to EM's `/api/*` and passes EM's bodies through untouched, so EM's
hrefs still say `/api/...` (on EM's own host name, or on the proxy's). A full load through it equals
the truth, and no request leaves the prefix or goes around the proxy."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from etl import db, pipeline
from etl.simulator import Quirks, Simulator, World
from helpers import assert_equal_to_truth

PREFIX = "/veeam-em/api"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}


class PathProxy:
    """A reverse proxy on loopback: `PREFIX/*` is forwarded to the upstream's `/api/*` (method,
    headers, body as sent; the answer as EM gave it); any other path answers 404 and is recorded."""

    def __init__(self) -> None:
        self.upstream: tuple[str, int] | None = None
        self.forwarded: list[str] = []
        self.refused: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.startswith(PREFIX + "/") and self.path != PREFIX:
                    proxy.refused.append(self.path)
                    self._answer(404, {"Content-Type": "text/plain"}, b"not behind this proxy")
                    return
                proxy.forwarded.append(self.path)
                assert proxy.upstream is not None
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    conn.request(self.command, "/api" + self.path[len(PREFIX) :], body or None, headers)
                    reply = conn.getresponse()
                    data = reply.read()
                    kept = {k: v for k, v in reply.getheaders() if k.lower() not in HOP_BY_HOP}
                    self._answer(reply.status, kept, data)
                finally:
                    conn.close()

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _relay  # noqa: N815 - names fixed by the base class

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = self.origin + PREFIX
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy():
    p = PathProxy()
    yield p
    p.close()


@pytest.mark.parametrize("hrefs_on", ["em-host", "proxy-host"])
def test_a_full_load_through_a_path_prefixed_proxy_equals_the_truth(db_url, proxy, hrefs_on):
    # EM writes its own host name into hrefs (em-host), or the host the proxy forwarded (proxy-host);
    # either way with its own path, /api/...
    public = "https://em01.example.com:9398" if hrefs_on == "em-host" else proxy.origin
    world = World(seed=91, servers=2, jobs=2, vms_per_job=3, days=2, quirks=Quirks(public_origin=public))
    with Simulator(world) as sim:
        proxy.upstream = ("127.0.0.1", sim.port)
        eng = db.engine(db_url)
        summary = pipeline.run(eng, proxy.url, "demo", "demo", options=pipeline.Options(page_size=20))
        assert summary.status == "succeeded" and summary.foreign_links == 0
        assert_equal_to_truth(eng, sim.truth())
        again = pipeline.run(eng, proxy.url, "demo", "demo", options=pipeline.Options(page_size=20))
        assert again.mode == "incremental"
        assert sum(c["inserted"] + c["updated"] for c in again.tables.values()) == 0
        eng.dispose()
        assert proxy.refused == []  # every request stayed under the prefix
        assert sim.requests == len(proxy.forwarded)  # and none went around the proxy
        assert any("/query?" in p for p in proxy.forwarded) and any(
            "sessionMngr" in p for p in proxy.forwarded
        )
