"""The threaded HTTP server that answers as EM for one `World`: lifecycle, logon sessions, outages,
the fault hook, and the access rules every route shares (401, 403) before its handler answers under
the world's lock; routes in routes.py, bodies from render.py and query.py.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import routes
from .accounts import PORTAL_USER, Account
from .faults import HANDLED, Faults
from .query import QueryEngine, QueryError
from .render import Renderer
from .routes import OUTAGE_MODES, XML, Access, Route
from .world import World

# What HTTP.sys answers, byte for byte, while the service behind a URL is down (a restart, a recycle).
UNAVAILABLE_HTML = (
    b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">\r\n'
    b"<HTML><HEAD><TITLE>Service Unavailable</TITLE>\r\n"
    b'<META HTTP-EQUIV="Content-Type" Content="text/html; charset=us-ascii"></HEAD>\r\n'
    b"<BODY><h2>Service Unavailable</h2>\r\n"
    b"<hr><p>HTTP Error 503. The service is unavailable.</p>\r\n"
    b"</BODY></HTML>\r\n"
)
Response = tuple[int, dict[str, str], bytes]  # (status, headers, body)
UNAUTHENTICATED = "Authentication required: missing or expired X-RestSvcSessionId"


@dataclass
class RequestContext:
    """What the fault hook sees about one request: `kind` is its route's (routes.py)."""

    sim: Simulator
    handler: BaseHTTPRequestHandler
    method: str
    path: str
    raw_query: str
    query: dict[str, str]  # lower-case keys
    segments: list[str]
    kind: str
    token: str | None
    extra: dict[str, Any] = field(default_factory=dict)
    route: Route | None = None  # None: matched when served


@dataclass(slots=True)
class LogonSession:
    """What a logon token stands for."""

    session_id: str
    last_use: float  # time.monotonic()
    account: Account


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    disable_nagle_algorithm = True
    wbufsize = 1 << 16  # headers and small bodies leave in one segment (flushed per request)
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature fixed by the base class
        pass

    def do_GET(self) -> None:
        self.server.sim._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.sim._handle(self, "POST")

    def do_DELETE(self) -> None:
        self.server.sim._handle(self, "DELETE")

    def do_PUT(self) -> None:
        self.server.sim._handle(self, "PUT")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, sim: Simulator, address: tuple[str, int]):
        self.sim = sim
        self.open_connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self, spare: socket.socket | None = None) -> None:
        """Reset every open keep-alive connection but `spare` (stop() does this; faults may too)."""
        with self._conn_lock:
            conns = [c for c in self.open_connections if c is not spare]
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:  # clients that hang up are not errors
        if not isinstance(sys.exc_info()[1], ConnectionError | OSError):
            super().handle_error(request, client_address)


class Simulator:
    """A fake EM at `.url` (`http://host:port/api`); `start()`/`stop()` or use as a context manager.

    With `ssl_context` (a server-side `ssl.SSLContext` holding a certificate) it serves HTTPS; the
    TLS handshake happens in the connection's own thread, so a client refusing the certificate
    does not stall the listener.
    """

    def __init__(
        self,
        world: World,
        host: str = "127.0.0.1",
        port: int = 0,
        user: str = "demo",
        password: str = "demo",  # noqa: S107 - the demo account
        faults: Faults | None = None,
        token_idle_timeout: float = 900.0,
        ssl_context: ssl.SSLContext | None = None,
        accounts: Iterable[Account] = (),
    ):
        """`user`/`password` is the Portal Administrator account; `accounts` adds others, each with
        its role (`add_account` does too)."""
        self.world, self.host, self.port = world, host, port
        self.ssl_context = ssl_context
        self.user, self.password = user, password
        self.accounts: dict[str, Account] = {a.user: a for a in accounts}
        self.faults = faults or Faults()
        self.token_idle_timeout = token_idle_timeout
        self.queries = QueryEngine(world)
        self.renderer: Renderer | None = None  # made by start(), for the address it listens on
        self.scheme = "https" if ssl_context is not None else "http"
        self.origin = f"{self.scheme}://{host}:{port}"  # the real address once started
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._life = threading.Lock()  # start/stop/outage/reopen of the listener
        self._stopped = False
        self._reopen_timer: threading.Timer | None = None
        self._outage_until = 0.0  # monotonic; while ahead, every request answers 503 (mode "503")
        self.outages = 0
        self._count = 0
        self._kinds: Counter[str] = Counter()
        self.tokens: dict[str, LogonSession] = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Simulator:
        with self._life:
            if self._httpd is not None:
                return self
            self._stopped = False
            self._listen()
            host = f"[{self.host}]" if ":" in self.host else self.host
            self.origin = f"{self.scheme}://{host}:{self.port}"
            self.world.origin = self.world.quirks.public_origin or self.origin
            self.renderer = Renderer(self.world, self.origin)
        return self

    def _listen(self) -> None:
        """Bind (`self.port`, 0 = any) and serve in a thread; under `_life`."""
        httpd = _Server(self, (self.host, self.port))
        if self.ssl_context is not None:
            httpd.socket = self.ssl_context.wrap_socket(
                httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"em-simulator:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def _close_listener(self, spare: socket.socket | None = None) -> None:
        """Stop serving, reset open connections (but `spare`), close the listening socket; under
        `_life`."""
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.drop_connections(spare)
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def stop(self) -> None:
        with self._life:
            self._stopped = True
            if self._reopen_timer is not None:
                self._reopen_timer.cancel()
                self._reopen_timer = None
            if self.renderer is not None:
                self.world.remove_listener(self.renderer.invalidate)
            self._close_listener()

    # ------------------------------------------------------------------ restarts
    def outage(self, seconds: float, mode: str = "503", spare: socket.socket | None = None) -> None:
        """The EM service restarts (a Windows service restart, an IIS recycle): every logon token dies
        and, for `seconds`, mode "503" answers every request (root, logon, data; not /admin) with
        HTTP.sys's 503 page, mode "refuse" closes the listening socket (connections are refused),
        resets open keep-alive connections (but `spare`, the caller's own) and listens again on the
        same port afterwards."""
        if mode not in OUTAGE_MODES:
            raise ValueError(f"outage mode must be one of {OUTAGE_MODES}, not {mode!r}")
        self.expire_token(None)
        with self._lock:
            self.outages += 1
        if mode == "503":
            with self._lock:
                self._outage_until = max(self._outage_until, time.monotonic() + seconds)
            return
        with self._life:
            if self._stopped or self._httpd is None:
                return
            self._close_listener(spare)
            self._reopen_timer = threading.Timer(seconds, self._reopen)
            self._reopen_timer.daemon = True
            self._reopen_timer.start()

    def _reopen(self) -> None:
        with self._life:
            self._reopen_timer = None
            if self._stopped or self._httpd is not None:
                return
            for _ in range(50):  # the port was ours a moment ago; SO_REUSEADDR covers TIME_WAIT
                try:
                    self._listen()
                    return
                except OSError:
                    time.sleep(0.1)
            raise RuntimeError(f"could not listen on port {self.port} again")

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{self.origin}/api"

    @property
    def render(self) -> Renderer:
        """The renderer of the address it listens on. Raises RuntimeError before `start()`."""
        if self.renderer is None:
            raise RuntimeError("the simulator has not been started")
        return self.renderer

    def drop_connections(self) -> None:
        """Reset every open client connection (the listener keeps accepting new ones)."""
        if self._httpd is not None:
            self._httpd.drop_connections()

    def truth(self) -> dict[str, dict[str, dict[str, Any]]]:
        """`world.truth()` with the hrefs this simulator serves."""
        return self.world.truth(self.origin)

    @property
    def requests(self) -> int:
        with self._lock:
            return self._count

    @property
    def requests_by_kind(self) -> Counter[str]:
        with self._lock:
            return Counter(self._kinds)

    # ------------------------------------------------------------------ accounts and tokens
    def add_account(
        self, user: str, password: str, role: str = PORTAL_USER, refused: Iterable[str] | None = None
    ) -> Account:
        """Accept another account with an EM role (PortalAdministrator, PortalUser,
        VMRestoreOperator); `refused` replaces the query types its role may not read."""
        account = Account(user, password, role, None if refused is None else frozenset(refused))
        with self._lock:
            self.accounts[user] = account
        return account

    def account_for(self, user: str | None, password: str | None) -> Account | None:
        """The account these credentials log on as (None: refused)."""
        if user == self.user and password == self.password:
            return Account(self.user, self.password)
        with self._lock:
            account = self.accounts.get(user or "")
        return account if account is not None and account.password == password else None

    def open_session(self, token: str, session_id: str, account: Account) -> None:
        """`token` is live from now on, for logon session `session_id` of `account`."""
        with self._lock:
            self.tokens[token] = LogonSession(session_id, time.monotonic(), account)

    def close_session(self, session_id: str) -> bool:
        """Kill the tokens of a logon session; False when it has none."""
        with self._lock:
            dead = [t for t, s in self.tokens.items() if s.session_id == session_id]
            for t in dead:
                del self.tokens[t]
        return bool(dead)

    def session_id(self, token: str | None) -> str | None:
        with self._lock:
            entry = self.tokens.get(token or "")
        return entry.session_id if entry is not None else None

    def _account_of(self, token: str | None) -> Account | None:
        """The account of a live token (its idle time starts again), None when it is not live."""
        if not token:
            return None
        with self._lock:
            entry = self.tokens.get(token)
            now = time.monotonic()
            if entry is None or now - entry.last_use > self.token_idle_timeout:
                self.tokens.pop(token, None)
                return None
            entry.last_use = now
            return entry.account

    def check_token(self, token: str | None) -> bool:
        """True (and refreshes idle time) if the token is live."""
        return self._account_of(token) is not None

    def expire_token(self, token: str | None = None) -> None:
        """Kill one token, or every token when None (for fault injection)."""
        with self._lock:
            if token is None:
                self.tokens.clear()
            else:
                self.tokens.pop(token, None)

    # ------------------------------------------------------------------ responses
    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        """EM's <Error> answer."""
        return status, {"Content-Type": XML, **(headers or {})}, self.render.error_doc(status, message)

    def access_denied(self) -> Response:
        """EM's answer to a request the account's role may not make (error-403-access-denied.xml)."""
        return self.error(403, "Access denied")

    @staticmethod
    def serve_unavailable() -> Response:
        """HTTP.sys's answer while the EM service is down (an outage in mode "503")."""
        return 503, {"Content-Type": "text/html; charset=us-ascii"}, UNAVAILABLE_HTML

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        if length:
            h.rfile.read(length)
        split = urlsplit(h.path)
        query = {k.lower(): v for k, v in parse_qsl(split.query, keep_blank_values=True)}
        segs = [s for s in split.path.split("/") if s]
        route = routes.match(method, segs, query)
        ctx = RequestContext(
            self,
            h,
            method,
            split.path,
            split.query,
            query,
            segs,
            route.kind,
            h.headers.get("X-RestSvcSessionId"),
            route=route,
        )
        with self._lock:
            self._count += 1
            self._kinds[route.kind] += 1
        outage = self._outage_until and time.monotonic() < self._outage_until
        if route.kind != "admin" and (outage or self._httpd is None):
            if self._httpd is None:  # a keep-alive request that slipped in as the listener closed
                h.close_connection = True
                return
            res = self.serve_unavailable()
        else:
            hooked = self.faults.intercept(ctx)
            if hooked is HANDLED:
                return
            res = self.serve(ctx) if hooked is None else hooked
            res = self.faults.transform(ctx, *res)
        status, headers, body = res
        try:
            h.send_response(status)
            for k, v in headers.items():
                h.send_header(k, v)
            if "Content-Length" not in headers:
                h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if body and method != "HEAD" and status not in (204, 304):
                h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
            return

    def serve(self, ctx: RequestContext) -> Response:
        """The response EM would give (faults call this to break a real answer on the wire)."""
        try:
            return self._answer(ctx)
        except QueryError as e:
            return self.error(400, str(e))
        except Exception as e:  # the simulator must answer like EM, not drop the connection
            return self.error(500, f"{type(e).__name__}: {e}")

    def _answer(self, ctx: RequestContext) -> Response:
        """Check who asks (403 off loopback, 401 without a live token, 403 for the role), then let the
        route's handler answer, under the world's lock when it reads the estate."""
        route = ctx.route or routes.match(ctx.method, ctx.segments, ctx.query)
        access = route.access
        if access is Access.LOOPBACK:
            host = ctx.handler.client_address[0]
            if not (host.startswith("127.") or host == "::1"):
                return self.error(403, "Admin endpoints are loopback-only")
        if access in (Access.PUBLIC, Access.LOOPBACK):
            return route.handler(self, ctx, None)
        account = self._account_of(ctx.token)
        if account is None:
            return self.error(401, UNAUTHENTICATED)
        if access is Access.LOGON:
            return route.handler(self, ctx, None)
        if access is Access.TYPE and not account.may_query(ctx.query.get("type") or ""):
            return self.access_denied()
        if access is Access.PATH and not account.may_get(ctx.segments[1:]):
            return self.access_denied()
        with self.world.lock:
            obj = None
            if route.type is not None:
                at = route.path.index("{id}")
                obj = self.world.find(route.type, ctx.segments[at].lower())
                if obj is None:
                    return self.error(404, f"{route.type} {ctx.segments[at]} was not found")
            return route.handler(self, ctx, obj)
