"""The threaded HTTP server speaking the EM REST (XML) dialect for one `World`.

Routing, logon tokens (each bound to an `accounts.Account` and its role), request accounting and
the fault hook live here; bodies come from `render.Renderer` and `query.QueryEngine`, built under
the world's lock.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import socket
import ssl
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from . import routes_backup
from .accounts import PORTAL_USER, Account
from .clock import T
from .faults import HANDLED, Faults
from .query import QueryEngine, QueryError
from .render import Renderer
from .world import World

XML = "application/xml; charset=utf-8"
# What HTTP.sys answers, byte for byte, while the service behind a URL is down (a restart, a recycle).
UNAVAILABLE_HTML = (
    b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">\r\n'
    b"<HTML><HEAD><TITLE>Service Unavailable</TITLE>\r\n"
    b'<META HTTP-EQUIV="Content-Type" Content="text/html; charset=us-ascii"></HEAD>\r\n'
    b"<BODY><h2>Service Unavailable</h2>\r\n"
    b"<hr><p>HTTP Error 503. The service is unavailable.</p>\r\n"
    b"</BODY></HTML>\r\n"
)
OUTAGE_MODES = ("503", "refuse")
COLLECTIONS = {
    "backupservers": "BackupServer",
    "replicasessions": "ReplicaJobSession",
    "replicatasksessions": "ReplicaTaskSession",
    "repicatasksessions": "ReplicaTaskSession",
    "vmreplicapoints": "VmReplicaPoint",
    **routes_backup.SEGMENTS,  # served by routes_backup.serve
}
Response = tuple[int, dict[str, str], bytes]


@dataclass
class RequestContext:
    """What the fault hook sees about one request."""

    sim: Simulator
    handler: BaseHTTPRequestHandler
    method: str
    path: str
    raw_query: str
    query: dict[str, str]
    segments: list[str]
    kind: str
    token: str | None
    extra: dict = field(default_factory=dict)


def classify(method: str, segs: list[str], query: dict[str, str]) -> str:
    low = [s.lower() for s in segs]
    if low[:1] == ["admin"]:
        return "admin"
    if low[:1] != ["api"]:
        return "other"
    rest = low[1:]
    if not rest:
        return "root"
    if rest[0] == "sessionmngr":
        return "logon"
    if rest[0] == "logonsessions":
        return "logoff" if method == "DELETE" else "other"
    if rest[0] == "query":
        return "query"
    if rest[0] == "querysvc":
        return "querysvc"
    if rest[0] == "agents" and len(rest) > 1:  # /api/agents/jobs/{id}: classified like /api/jobs/{id}
        rest = rest[1:]
    if rest[0] in COLLECTIONS:
        if len(rest) == 1:
            return "collection"
        if len(rest) == 2:
            return "entity" if query.get("format", "").lower() == "entity" else "reference"
        return "children"
    return "other"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    disable_nagle_algorithm = True
    wbufsize = 1 << 16  # headers and small bodies leave in one segment (flushed per request)

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass

    def do_GET(self):
        self.server.sim._handle(self, "GET")

    def do_POST(self):
        self.server.sim._handle(self, "POST")

    def do_DELETE(self):
        self.server.sim._handle(self, "DELETE")

    def do_PUT(self):
        self.server.sim._handle(self, "PUT")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, *args, **kwargs):
        self.open_connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        with self._conn_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
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

    def handle_error(self, request, client_address):  # clients that hang up are not errors
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
        self.renderer: Renderer | None = None
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
        self._kinds: Counter = Counter()
        self.tokens: dict[str, list] = {}  # token -> [session id, last use (monotonic), Account]

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
        httpd = _Server((self.host, self.port), _Handler)
        httpd.sim = self
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

    def __exit__(self, *exc) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Start (if needed) and block until interrupted (Ctrl-C)."""
        self.start()
        try:
            while not self._stopped:  # a "refuse" outage closes the listener for a while
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    @property
    def url(self) -> str:
        return f"{self.origin}/api"

    def drop_connections(self) -> None:
        """Reset every open client connection (the listener keeps accepting new ones)."""
        if self._httpd is not None:
            self._httpd.drop_connections()

    def truth(self) -> dict[str, dict[str, dict]]:
        """`world.truth()` with the hrefs this simulator serves."""
        return self.world.truth(self.origin)

    @property
    def requests(self) -> int:
        with self._lock:
            return self._count

    @property
    def requests_by_kind(self) -> Counter:
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

    def _account(self, user: str | None, password: str | None) -> Account | None:
        """The account these credentials log on as (None: refused)."""
        if user == self.user and password == self.password:
            return Account(self.user, self.password)
        with self._lock:
            account = self.accounts.get(user or "")
        return account if account is not None and account.password == password else None

    def check_token(self, token: str | None) -> bool:
        """True (and refreshes idle time) if the token is live."""
        if not token:
            return False
        with self._lock:
            entry = self.tokens.get(token)
            now = time.monotonic()
            if entry is None or now - entry[1] > self.token_idle_timeout:
                self.tokens.pop(token, None)
                return False
            entry[1] = now
            return True

    def expire_token(self, token: str | None = None) -> None:
        """Kill one token, or every token when None (for fault injection)."""
        with self._lock:
            if token is None:
                self.tokens.clear()
            else:
                self.tokens.pop(token, None)

    # ------------------------------------------------------------------ responses
    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return status, {"Content-Type": XML, **(headers or {})}, self.renderer.error_doc(status, message)

    def access_denied(self) -> Response:
        """EM's answer to a request the account's role may not make (error-403-access-denied.xml)."""
        return self.error(403, "Access denied")

    @staticmethod
    def serve_unavailable() -> Response:
        """HTTP.sys's answer while the EM service is down (an outage in mode "503")."""
        return 503, {"Content-Type": "text/html; charset=us-ascii"}, UNAVAILABLE_HTML

    def _ok(self, body: bytes, status: int = 200) -> Response:
        return status, {"Content-Type": XML}, body

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        if length:
            h.rfile.read(length)
        split = urlsplit(h.path)
        query = {k.lower(): v for k, v in parse_qsl(split.query, keep_blank_values=True)}
        segs = [s for s in split.path.split("/") if s]
        kind = classify(method, segs, query)
        ctx = RequestContext(
            self, h, method, split.path, split.query, query, segs, kind, h.headers.get("X-RestSvcSessionId")
        )
        with self._lock:
            self._count += 1
            self._kinds[kind] += 1
        outage = self._outage_until and time.monotonic() < self._outage_until
        if kind != "admin" and (outage or self._httpd is None):
            if self._httpd is None:  # a keep-alive request that slipped in as the listener closed
                h.close_connection = True
                return
            res = self.serve_unavailable()
        else:
            res = self.faults.intercept(ctx)
            if res is HANDLED:
                return
            if res is None:
                res = self.serve(ctx)
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
            return self._dispatch(ctx)
        except QueryError as e:
            return self.error(400, str(e))
        except Exception as e:  # the simulator must answer like EM, not drop the connection
            return self.error(500, f"{type(e).__name__}: {e}")

    def _dispatch(self, ctx: RequestContext) -> Response:
        kind, method, r, w = ctx.kind, ctx.method, self.renderer, self.world
        if kind == "admin":
            return self._admin(ctx)
        if kind == "root":
            return self._ok(r.root_doc()) if method == "GET" else self.error(405, "Method not allowed")
        if kind == "logon":
            return self._logon(ctx)
        if kind == "other" and ctx.segments[:1] != ["api"] and ctx.segments[:1] != ["API"]:
            return self.error(404, f"No resource at {ctx.path}")
        if not self.check_token(ctx.token):
            return self.error(401, "Authentication required: missing or expired X-RestSvcSessionId")
        if kind == "logoff":
            return self._logoff(ctx)
        if kind == "querysvc":
            if method != "GET":
                return self.error(405, f"Method {method} not allowed on {ctx.path}")
            with self._lock:
                entry = self.tokens.get(ctx.token)
            return self._ok(r.menu_doc(entry[0] if entry else None))
        if method != "GET":
            return self.error(405, f"Method {method} not allowed on {ctx.path}")
        with self._lock:
            entry = self.tokens.get(ctx.token or "")
        if entry is None:  # expired since it was checked
            return self.error(401, "Authentication required: missing or expired X-RestSvcSessionId")
        account: Account = entry[2]
        if kind == "query" and not account.may_query(ctx.query.get("type") or ""):
            return self.access_denied()
        if kind != "query" and not account.may_get(ctx.segments[1:]):
            return self.access_denied()
        segs = ctx.segments
        with w.lock:
            if kind != "query":
                res = routes_backup.serve(self, ctx)
                if res is not None:
                    return res
            if kind == "query":
                w.collect_while_paging()  # with quirks.collecting_minutes: EM's clock moves first
                qk, objs, entity, page, size, count, links = self.queries.run(ctx.query, r.api)
                return self._ok(r.query_doc(qk, objs, entity, page, size, count, links))
            if kind in ("entity", "reference", "children"):
                okind = COLLECTIONS[segs[1].lower()]
                obj = w.index[okind].get(segs[2].lower())
                if obj is None:
                    return self.error(404, f"{okind} {segs[2]} was not found")
                if kind == "entity":
                    return self._ok(r.entity_doc(obj))
                if kind == "reference":
                    return self._ok(r.ref_doc(obj))
                if (
                    okind == "ReplicaJobSession"
                    and len(segs) == 4
                    and segs[3].lower() == "replicatasksessions"
                ):
                    tasks = [t for t in obj.tasks if t.guid in w.index["ReplicaTaskSession"]]
                    return self._ok(r.collection_doc("ReplicaTaskSession", tasks, self._entity_format(ctx)))
                return self.error(404, f"No resource at {ctx.path}")
            if kind == "collection":
                okind = COLLECTIONS[segs[1].lower()]
                return self._ok(r.collection_doc(okind, self._last_30_days(okind), self._entity_format(ctx)))
        return self.error(404, f"No resource at {ctx.path}")

    @staticmethod
    def _entity_format(ctx: RequestContext) -> bool:
        return ctx.query.get("format", "").lower() in ("entity", "entities")

    def _last_30_days(self, kind: str) -> list:
        w = self.world
        since = w.now_ticks - 30 * 86400 * T
        if kind == "BackupServer":
            return w.visible_servers()
        if kind == "ReplicaJobSession":
            return [o for o in w.queryable_job_sessions() if o.start >= since]
        if kind == "ReplicaTaskSession":
            return [o for o in w.tasks if o.created >= since]
        return [o for o in w.points if o.created >= since]

    def _logon(self, ctx: RequestContext) -> Response:
        if ctx.method != "POST":
            return self.error(405, "Use POST to create a logon session")
        auth = ctx.handler.headers.get("Authorization") or ""
        user = password = None
        if auth[:6].lower() == "basic ":
            try:
                user, _, password = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                user = None
        account = self._account(user, password)
        if account is None:
            return self.error(
                401,
                "Authentication failed: invalid user name or password",
                {"WWW-Authenticate": "Basic Realm=RestSvc"},
            )
        session_id = str(uuid.uuid4())
        token = base64.b64encode(secrets.token_bytes(24)).decode()
        with self._lock:
            self.tokens[token] = [session_id, time.monotonic(), account]
        headers = {
            "Content-Type": XML,
            "x-restsvcsessionid": token,
            "Set-Cookie": f"X-RestSvcSessionId={token}; path=/; HttpOnly",
        }
        return 201, headers, self.renderer.logon_doc(session_id, user)

    def _logoff(self, ctx: RequestContext) -> Response:
        sid = ctx.segments[2].lower() if len(ctx.segments) > 2 else ""
        with self._lock:
            dead = [t for t, (s, *_) in self.tokens.items() if s == sid]
            for t in dead:
                del self.tokens[t]
        if not dead:
            return self.error(404, f"Logon session {sid} was not found")
        return 204, {}, b""

    def _admin(self, ctx: RequestContext) -> Response:
        host = ctx.handler.client_address[0]
        if not (host.startswith("127.") or host == "::1"):
            return self.error(403, "Admin endpoints are loopback-only")
        action = ctx.segments[1].lower() if len(ctx.segments) > 1 else ""
        if action == "advance" and ctx.method == "POST":
            try:
                hours = float(ctx.query.get("hours") or 0) + float(ctx.query.get("minutes") or 0) / 60
            except ValueError:
                return self.error(400, "hours/minutes must be numbers")
            if hours < 0:
                return self.error(400, "Time only moves forward")
            self.world.advance(timedelta(hours=hours))
            return 204, {}, b""
        if action == "outage" and ctx.method == "POST":
            mode = ctx.query.get("mode") or "503"
            try:
                seconds = float(ctx.query.get("seconds") or 60)
            except ValueError:
                return self.error(400, "seconds must be a number")
            if mode not in OUTAGE_MODES or seconds < 0:
                return self.error(400, f"mode must be one of {OUTAGE_MODES}, seconds >= 0")
            self.outage(seconds, mode, spare=ctx.handler.connection)  # in force before the answer
            ctx.handler.close_connection = True
            return 204, {"Connection": "close"}, b""
        if action == "truth" and ctx.method == "GET":
            body = json.dumps(self.world.truth(self.origin), default=_json_default, indent=1).encode()
            return 200, {"Content-Type": "application/json"}, body
        return self.error(404, f"No admin action {ctx.path}")


def _json_default(o):
    if isinstance(o, datetime):
        return o.isoformat()
    raise TypeError(type(o).__name__)
