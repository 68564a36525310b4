"""A recorded Enterprise Manager on loopback: serves bodies from tests/payloads/em-samples/ (real EM
answers, not the simulator's) at the documented URLs, over a real socket.

    with Replay({"ReplicaJobSession": "query-replica-job-session-waiting-repository.xml"}) as em:
        run the client against em.url ...
        em.requests      # every request: (method, path, query)

- `GET /api/`                          EnterpriseManager with the LogonSession Create link
- `POST /api/sessionMngr/?v=latest`    201, `X-RestSvcSessionId` header and cookie, LogonSession body
                                       (QueryService -> /api/querySvc, Delete -> logoff); Basic auth
                                       required (checked when `user`/`password` are given)
- `DELETE /api/logonSessions/{id}`     204
- `GET /api/querySvc…`                 the recorded QuerySvc menu, whatever the parameters
- `GET /api/query?type=T…`             `queries[T]` (type matched case-insensitively), else `empty`;
                                       asked in the References format, the same entities as `<Ref>`s,
                                       `pageSize` a page (EM's empty References result: no `<Refs>`)
- any other `GET` path                 `routes["path?query"]`, else `routes[path]`, else 404 with an EM
                                       Error body
Every request but root and logon needs a live token (else 401 with an Error body). A body is a file
name in the samples, raw bytes, or `(status, name-or-bytes)`. The recorded origin
`https://em01.example.local:9398` is rewritten to the replay server's own in every body.
"""

from __future__ import annotations

import base64
import secrets
import threading
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

SAMPLES = Path(__file__).resolve().parent / "payloads" / "em-samples"
RECORDED_ORIGIN = "https://em01.example.local:9398"
NS = "http://www.veeam.com/ent/v1.0"
XML = "application/xml; charset=utf-8"
Body = str | bytes | tuple[int, str | bytes]


class Request(NamedTuple):
    method: str
    path: str
    query: dict[str, str]


class Replay:
    """See the module docstring. `url` is the API base (`http://127.0.0.1:PORT/api`)."""

    def __init__(
        self,
        queries: Mapping[str, Body] | None = None,
        *,
        routes: Mapping[str, Body] | None = None,
        empty: Body = "query-empty-entities.xml",
        user: str | None = None,
        password: str | None = None,
        samples: Path = SAMPLES,
    ):
        self.queries = {k.lower(): v for k, v in (queries or {}).items()}
        self.routes = {k.lower().rstrip("/"): v for k, v in (routes or {}).items()}
        self.empty, self.samples = empty, samples
        self.user, self.password = user, password
        self.requests: list[Request] = []
        self.tokens: dict[str, str] = {}  # token -> logon session id
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.origin = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Replay:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "Microsoft-HTTPAPI/2.0"
            sys_version = ""
            disable_nagle_algorithm = True

            def do_GET(self):  # noqa: N802 - fixed by the base class
                replay._handle(self, "GET")

            def do_POST(self):  # noqa: N802
                replay._handle(self, "POST")

            def do_DELETE(self):  # noqa: N802
                replay._handle(self, "DELETE")

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Replay:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{self.origin}/api"

    def queried(self, type_: str | None = None) -> list[Request]:
        """The `/api/query` requests, of one type (case-insensitive) or all."""
        with self._lock:
            reqs = [r for r in self.requests if r.path.lower().rstrip("/") == "/api/query"]
        if type_ is not None:
            reqs = [r for r in reqs if (r.query.get("type") or "").lower() == type_.lower()]
        return reqs

    # ------------------------------------------------------------------ bodies
    def body(self, spec: Body) -> tuple[int, bytes]:
        status, data = spec if isinstance(spec, tuple) else (200, spec)
        if isinstance(data, str):
            data = (self.samples / data).read_bytes()
        return status, data.replace(RECORDED_ORIGIN.encode(), self.origin.encode())

    @staticmethod
    def references(body: bytes, size: int, page: int) -> bytes:
        """A recorded Entities result as EM answers it in the References format: each entity as a
        `<Ref>` (its Type + "Reference", UID, Href, Name), `size` a page; no `<Refs>` when empty."""
        root = etree.fromstring(body)
        box = root.find(f"{{{NS}}}Entities")
        found = [] if box is None else [el for el in box.iter() if el.get("Type") and el.get("UID")]
        count = -(-len(found) // size)
        refs = "".join(
            f"<Ref Type={quoteattr(el.get('Type') + 'Reference')} UID={quoteattr(el.get('UID'))} "
            f"Href={quoteattr((el.get('Href') or '').split('?')[0])} Name={quoteattr(el.get('Name') or '')} />"
            for el in found[(page - 1) * size : page * size]
        )
        return (
            f'<?xml version="1.0" encoding="utf-8"?>\n<QueryResult xmlns="{NS}">'
            + (f"<Refs>{refs}</Refs>" if refs else "")
            + f'<PagingInfo PageNum="{page}" PageSize="{size}" PagesCount="{count}" /></QueryResult>'
        ).encode()

    def error(self, status: int, message: str) -> bytes:
        return (
            f'<?xml version="1.0" encoding="utf-8"?>\n<Error Message={quoteattr(message)} '
            f'StatusCode="{status}" xmlns="{NS}" />'
        ).encode()

    def root_doc(self) -> bytes:
        return (
            f'<?xml version="1.0" encoding="utf-8"?>\n<EnterpriseManager xmlns="{NS}"><Links>'
            f'<Link Rel="Create" Type="LogonSession" Href="{self.url}/sessionMngr/?v=latest" /></Links>'
            '<SupportedVersions><SupportedVersion Name="v1_5" /><SupportedVersion Name="v1_6" />'
            '<SupportedVersion Name="v1_7" /></SupportedVersions></EnterpriseManager>'
        ).encode()

    def logon_doc(self, sid: str, user: str) -> bytes:
        api, me = self.url, f"{self.url}/logonSessions/{sid}"
        links = "".join(
            f'<Link Rel="{rel}" Type="{typ}" Href="{href}" />'
            for rel, typ, href in (
                ("Up", "EnterpriseManager", f"{api}/"),
                ("Down", "BackupServerReferenceList", f"{api}/backupServers"),
                ("Down", "ReplicaJobSessionReferenceList", f"{api}/replicaSessions"),
                ("Down", "ReplicaTaskSessionReferenceList", f"{api}/replicaTaskSessions"),
                ("Down", "VmReplicaPointReferenceList", f"{api}/vmReplicaPoints"),
                ("Down", "QueryService", f"{api}/querySvc"),
                ("Delete", "LogonSession", me),
            )
        )
        return (
            f'<?xml version="1.0" encoding="utf-8"?>\n<LogonSession xmlns="{NS}" Type="LogonSession" '
            f'Href="{me}"><Links>{links}</Links><UserName>{escape(user)}</UserName><SessionId>{sid}</SessionId>'
            "</LogonSession>"
        ).encode()

    # ------------------------------------------------------------------ requests
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        if length:
            h.rfile.read(length)
        split = urlsplit(h.path)
        path = split.path
        with self._lock:
            self.requests.append(Request(method, path, dict(parse_qsl(split.query, keep_blank_values=True))))
        status, headers, body = self._answer(h, method, path.lower().rstrip("/"), split.query)
        h.send_response(status)
        for k, v in {"Content-Type": XML, **headers}.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if body and status != 204:
            h.wfile.write(body)

    def _answer(self, h, method: str, path: str, raw_query: str) -> tuple[int, dict[str, str], bytes]:
        if path == "/api" and method == "GET":
            return 200, {}, self.root_doc()
        if path == "/api/sessionmngr" and method == "POST":
            return self._logon(h)
        with self._lock:
            sid = self.tokens.get(h.headers.get("X-RestSvcSessionId") or "")
        if sid is None:
            return 401, {}, self.error(401, "Authentication required: missing or expired X-RestSvcSessionId")
        if path.startswith("/api/logonsessions/") and method == "DELETE":
            with self._lock:
                for token in [t for t, s in self.tokens.items() if s == path.rsplit("/", 1)[-1]]:
                    del self.tokens[token]
            return 204, {}, b""
        if method != "GET":
            return 405, {}, self.error(405, f"Method {method} is not allowed")
        if path.startswith("/api/querysvc"):
            return self._pair(self.body("querysvc-menu.xml"))
        if path == "/api/query":
            params = {k.lower(): v for k, v in parse_qsl(raw_query)}
            status, body = self.body(self.queries.get(params.get("type", "").lower(), self.empty))
            if status == 200 and params.get("format", "").lower() == "references":
                body = self.references(body, int(params.get("pagesize") or 100), int(params.get("page") or 1))
            return status, {}, body
        spec = (raw_query and self.routes.get(f"{path}?{raw_query}".lower())) or self.routes.get(path)
        if spec is None:
            return 404, {}, self.error(404, f"No resource at {path}")
        return self._pair(self.body(spec))

    @staticmethod
    def _pair(answer: tuple[int, bytes]) -> tuple[int, dict[str, str], bytes]:
        return answer[0], {}, answer[1]

    def _logon(self, h) -> tuple[int, dict[str, str], bytes]:
        auth = h.headers.get("Authorization") or ""
        user = password = None
        if auth[:6].lower() == "basic ":
            user, _, password = base64.b64decode(auth[6:].strip()).decode("utf-8", "replace").partition(":")
        if user is None or (self.user is not None and (user, password) != (self.user, self.password)):
            return 401, {"WWW-Authenticate": "Basic Realm=RestSvc"}, self.error(401, "Authentication failed")
        sid, token = str(uuid.uuid4()), base64.b64encode(secrets.token_bytes(24)).decode()
        with self._lock:
            self.tokens[token] = sid
        headers = {"X-RestSvcSessionId": token, "Set-Cookie": f"X-RestSvcSessionId={token}; path=/; HttpOnly"}
        return 201, headers, self.logon_doc(sid, user)
