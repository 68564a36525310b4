"""Fault injection for the simulator: a flaky or hostile Enterprise Manager, seeded and switchable.

The server calls `intercept(ctx)` before serving each request and `transform(ctx, ...)` on every
response; every decision is a hash of (seed, request, times seen), never a shared random stream.
"""

from __future__ import annotations

import hashlib
import re
import socket
import struct
import threading
import time
from collections import Counter
from enum import Enum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .server import RequestContext, Response


class Handled(Enum):
    HANDLED = "handled"


HANDLED: Final = (
    Handled.HANDLED
)  # returned by intercept() when the fault already wrote (or dropped) the response
RequestKey = tuple[str, str, str]  # (method, lower-case path, raw query): the same request again

DATA_KINDS = frozenset({"query", "entity", "reference", "collection", "children"})
# Per-request fault classes, in the order their rates are stacked on the unit interval.
REQUEST_FAULTS = (
    "unavailable",
    "throttle",
    "server_error",
    "slow",
    "reset",
    "truncate",
    "short_body",
    "malformed",
    "doctype",
)
# How a corrupted entity is made unreadable, per type (chosen per entity from the seed).
CORRUPTIONS = {
    "BackupServer": ("port", "uid"),
    "ReplicaJobSession": ("date", "progress", "uid"),
    "ReplicaTaskSession": ("size", "date", "end", "uid"),
    "VmReplicaPoint": ("date", "uid"),
}
_UID = re.compile(rb'UID="urn:veeam:(\w+):([0-9A-Fa-f-]+)"')
_LINK = re.compile(rb"<(?:\w+:)?Link\b[^>]*>")


class Faults:
    """A simulated EM's misbehaviour. `ctx` is a `server.RequestContext`: method, path, raw_query,
    query (lower-case keys), segments, kind (root/logon/logoff/query/entity/reference/collection/
    children/admin/other), token, sim (the Simulator: serve(ctx), check_token, expire_token,
    error(status, msg), drop_connections, world) and handler (the BaseHTTPRequestHandler; its wfile is
    buffered, so flush after raw writes and set `handler.close_connection = True` before returning
    HANDLED on a broken response). `ctx.extra` is free for a fault's own bookkeeping.

    Rates (0..1, per request to the data endpoints: query, entity, reference, collections; never
    root, logon or logoff):
      unavailable   503 with `Retry-After` (0 or 1 s)       throttle   429 with `Retry-After`
      server_error  500 with an EM <Error> body              slow       answer after `slow_seconds`
      reset         headers and part of the body, then a TCP reset
      truncate      a cut body whose Content-Length matches what is sent
      short_body    the full Content-Length, but the connection closes part-way through the body
      malformed     200 with a body that is not well-formed XML
      doctype       the real body with a DOCTYPE whose external entity reads `xxe_target`
    At most `max_per_request` faults hit one request (same method and URL), so a client that retries
    enough always gets through.

    Per entity (the same entity is affected in every response that carries it):
      corrupt        rate of entities with one unreadable field (see CORRUPTIONS) or no UID
      foreign_links  rate of job sessions / replica points whose task sessions' `Up` / `Related`
                     links point to `foreign_origin` instead of EM

    Sessions and availability:
      token_requests     a logon token expires after this many data requests (then 401); keep it
                         above twice the client's threads (veeam-etl: 2 x concurrency), or a fresh
                         token can be used up before the thread that logged on repeats its request
                         (one re-logon per request)
      token_idle         a logon token expires after this many idle seconds (then 401)
      logon_unavailable  the first N logon POSTs answer 503 (the only fault that touches logon)
      down               every data request answers 503 (a source that stays down)
      outage_after       an EM restart after this many data requests: `Simulator.outage()` drops every
                         logon token and, for `outage_seconds`, answers every request with HTTP.sys's
                         503 page (`outage_mode="503"`) or refuses connections ("refuse": the
                         listening socket closes, keep-alive connections are reset, and the same
                         port listens again afterwards); the request that triggers it is the first
                         to fail. `outage_count` restarts, each `outage_after` data requests after
                         the previous one ended

    `fired` counts the faults that fired, by class.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        unavailable: float = 0.0,
        throttle: float = 0.0,
        server_error: float = 0.0,
        slow: float = 0.0,
        reset: float = 0.0,
        truncate: float = 0.0,
        short_body: float = 0.0,
        malformed: float = 0.0,
        doctype: float = 0.0,
        corrupt: float = 0.0,
        foreign_links: float = 0.0,
        token_requests: int | None = None,
        token_idle: float | None = None,
        logon_unavailable: int = 0,
        down: bool = False,
        outage_after: int | None = None,
        outage_seconds: float = 30.0,
        outage_mode: str = "503",
        outage_count: int = 1,
        slow_seconds: float = 1.5,
        max_per_request: int = 3,
        foreign_origin: str = "http://evil.example:9399",
        xxe_target: str = "file:///etc/passwd",
    ):
        self.seed = seed
        self.rates = {
            "unavailable": unavailable,
            "throttle": throttle,
            "server_error": server_error,
            "slow": slow,
            "reset": reset,
            "truncate": truncate,
            "short_body": short_body,
            "malformed": malformed,
            "doctype": doctype,
        }
        if sum(self.rates.values()) > 1.0:
            raise ValueError("per-request fault rates must add up to at most 1")
        self.corrupt, self.foreign_links = corrupt, foreign_links
        self.token_requests, self.token_idle = token_requests, token_idle
        self.logon_unavailable, self.down = logon_unavailable, down
        if outage_mode not in ("503", "refuse"):
            raise ValueError(f"outage_mode must be '503' or 'refuse', not {outage_mode!r}")
        self.outage_after, self.outage_seconds = outage_after, outage_seconds
        self.outage_mode, self.outage_count = outage_mode, outage_count
        self._data_requests = 0  # data requests since the start or the end of the last outage
        self._outages = 0
        self.slow_seconds, self.max_per_request = slow_seconds, max_per_request
        self.foreign_origin, self.xxe_target = foreign_origin.rstrip("/"), xxe_target
        self.fired: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._seen: Counter[RequestKey] = Counter()  # request key -> times seen
        self._hit: Counter[RequestKey] = Counter()  # request key -> faults injected
        self._token_uses: Counter[str] = Counter()
        self._logons = 0

    # ------------------------------------------------------------------ deterministic draws
    def draw(self, *parts: object) -> float:
        """A number in [0, 1) fixed by the seed and `parts`."""
        digest = hashlib.blake2b(repr((self.seed, *parts)).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def corruption(self, kind: str, guid: str) -> str | None:
        """How the entity `kind`/`guid` is corrupted, or None."""
        if not self.corrupt or kind not in CORRUPTIONS or self.draw("corrupt", guid.lower()) >= self.corrupt:
            return None
        modes = CORRUPTIONS[kind]
        return modes[int(self.draw("mode", guid.lower()) * len(modes))]

    def is_foreign(self, guid: str) -> bool:
        """Whether links to the job session or replica point `guid` point to another origin."""
        return bool(self.foreign_links) and self.draw("foreign", guid.lower()) < self.foreign_links

    def _fire(self, name: str) -> None:
        with self._lock:
            self.fired[name] += 1

    # ------------------------------------------------------------------ hook: before serving
    def intercept(self, ctx: RequestContext) -> Response | Handled | None:
        """Return None to serve normally, `(status, headers, body)` to answer instead, or HANDLED."""
        if ctx.kind == "logon" and ctx.method == "POST" and self.logon_unavailable:
            with self._lock:
                self._logons += 1
                refuse = self._logons <= self.logon_unavailable
            if refuse:
                self._fire("logon_unavailable")
                return ctx.sim.error(503, "Service is temporarily unavailable", {"Retry-After": "0"})
            return None
        if ctx.kind not in DATA_KINDS:
            return None
        if self.outage_after is not None and self._restart(ctx, self.outage_after):
            if self.outage_mode == "refuse":
                return HANDLED  # this request's connection was reset with the others
            return ctx.sim.serve_unavailable()
        if self.down:
            self._fire("down")
            return ctx.sim.error(
                503, "Service is temporarily unavailable (maintenance)", {"Retry-After": "0"}
            )
        self._expire(ctx)
        key = (ctx.method, ctx.path.lower(), ctx.raw_query)
        with self._lock:
            n = self._seen[key]
            self._seen[key] += 1
            allowed = self._hit[key] < self.max_per_request
        fault = self._choose(key, n) if allowed else None
        if fault is None:
            return None
        with self._lock:
            self._hit[key] += 1
        ctx.extra["fault"], ctx.extra["draw"] = fault, (key, n)
        if fault not in ("truncate", "malformed", "doctype"):
            self._fire(fault)  # those three are counted when transform() applies them to a 200
        retry_after = str(int(self.draw("retry-after", key, n) * 2))  # "0" or "1"
        if fault == "unavailable":
            return ctx.sim.error(503, "Service is temporarily unavailable", {"Retry-After": retry_after})
        if fault == "throttle":
            return ctx.sim.error(429, "Too many requests", {"Retry-After": retry_after})
        if fault == "server_error":
            return ctx.sim.error(500, "Object reference not set to an instance of an object.")
        if fault == "slow":
            time.sleep(self.slow_seconds)
            return None
        if fault in ("reset", "short_body"):
            return self._break(ctx, fault, *ctx.sim.serve(ctx))
        return None  # truncate, malformed, doctype rewrite the real answer in transform()

    def _restart(self, ctx: RequestContext, after: int) -> bool:
        """Count a data request; start an outage on the one after `outage_after` (True)."""
        with self._lock:
            if self._outages >= self.outage_count:
                return False
            self._data_requests += 1
            if self._data_requests <= after:
                return False
            self._outages += 1
            self._data_requests = 0
        self._fire("outage")
        ctx.sim.outage(self.outage_seconds, self.outage_mode)
        return True

    def _choose(self, key: RequestKey, n: int) -> str | None:
        u, edge = self.draw("request", key, n), 0.0
        for name in REQUEST_FAULTS:
            edge += self.rates[name]
            if u < edge:
                return name
        return None

    def _expire(self, ctx: RequestContext) -> None:
        token = ctx.token
        if not token:
            return
        if self.token_idle is not None:
            entry = ctx.sim.tokens.get(token)
            if entry is not None and time.monotonic() - entry.last_use > self.token_idle:
                ctx.sim.expire_token(token)
                self._fire("token_idle")
        if self.token_requests is not None:
            with self._lock:
                self._token_uses[token] += 1
                over = self._token_uses[token] > self.token_requests
            if over and ctx.sim.check_token(token):
                ctx.sim.expire_token(token)
                self._fire("token_requests")

    def _break(
        self, ctx: RequestContext, fault: str, status: int, headers: dict[str, str], body: bytes
    ) -> Handled:
        """Send the head and part of the body, then reset (`reset`) or close (`short_body`)."""
        h = ctx.handler
        cut = self._cut(ctx, body)
        h.close_connection = True
        try:
            h.send_response(status)
            for k, v in headers.items():
                if k.lower() != "content-length":
                    h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[:cut])
            h.wfile.flush()
            sock = h.connection
            if fault == "reset":  # SO_LINGER 0: close() sends RST instead of FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            else:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return HANDLED

    def _cut(self, ctx: RequestContext, body: bytes) -> int:
        if len(body) < 4:
            return 0
        key, n = ctx.extra["draw"]
        return len(body) // 4 + int(self.draw("cut", key, n) * (len(body) // 2))

    # ------------------------------------------------------------------ hook: rewrite the answer
    def transform(
        self, ctx: RequestContext, status: int, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Rewrite the response about to be sent (corrupt entities, foreign links, cut bodies)."""
        if ctx.kind not in DATA_KINDS or status != 200 or not body:
            return status, headers, body
        if self.corrupt or self.foreign_links:
            body = self._rewrite_entities(ctx, body)
        fault = ctx.extra.get("fault")
        if fault in ("truncate", "malformed", "doctype"):
            self._fire(fault)
        if fault == "truncate":
            body = body[: self._cut(ctx, body)]
            headers = {**headers, "Content-Length": str(len(body))}
        elif fault == "malformed":
            cut = self._cut(ctx, body)
            body = body[:cut] + b"<</>&broken" + body[cut:]
        elif fault == "doctype":
            body = self._with_doctype(body)
        return status, headers, body

    def _with_doctype(self, body: bytes) -> bytes:
        """The body with an internal DTD declaring an external entity, referenced in the first field."""
        head = b""
        if body.startswith(b"\xef\xbb\xbf"):
            head, body = body[:3], body[3:]
        if body.startswith(b"<?xml"):
            end = body.index(b"?>") + 2
            head, body = head + body[:end], body[end:]
        m = re.search(rb"<([\w:]+)", body)
        root = m.group(1).decode() if m else "QueryResult"
        dtd = f'<!DOCTYPE {root} [<!ENTITY xxe SYSTEM "{self.xxe_target}">]>'.encode()
        body = re.sub(rb"(<(?:\w+:)?(?:Description|Name|JobName|Reason|VmName)>)", rb"\1&xxe;", body, count=1)
        return head + dtd + body

    def _rewrite_entities(self, ctx: RequestContext, body: bytes) -> bytes:
        out: list[bytes] = []
        pos = 0
        origin = ctx.sim.render.origin.encode()
        for m in _UID.finditer(body):
            kind, guid = m.group(1).decode(), m.group(2).decode()
            start = body.rfind(b"<", 0, m.start())
            if start < pos:
                continue
            head = re.match(rb"<([\w:]+)", body[start:])
            if head is None:
                continue
            tag = head.group(1)
            if tag.rsplit(b":", 1)[-1].decode() != kind:
                continue  # a reference (<Ref>, <EntityRef>): left intact
            end = body.find(b"</" + tag + b">", m.end())
            if end < 0:
                continue
            piece = body[start:end]
            mode = self.corruption(kind, guid)
            if mode is not None:
                piece = self._corrupt(piece, mode)
                self._fire("corrupt")
            if kind == "ReplicaTaskSession" and self.foreign_links:
                piece = _LINK.sub(lambda ln: self._foreign(ln.group(0), origin), piece)
            out += [body[pos:start], piece]
            pos = end
        out.append(body[pos:])
        return b"".join(out)

    def _foreign(self, link: bytes, origin: bytes) -> bytes:
        if b'"ReplicaJobSessionReference"' not in link and b'"VmReplicaPoint"' not in link:
            return link
        m = re.search(rb'Href="[^"]*/([0-9A-Fa-f-]{36})(?:\?[^"]*)?"', link)
        if m is None or not self.is_foreign(m.group(1).decode()):
            return link
        self._fire("foreign_links")
        return link.replace(b'Href="' + origin, b'Href="' + self.foreign_origin.encode())

    @staticmethod
    def _corrupt(piece: bytes, mode: str) -> bytes:
        if mode == "uid":
            return re.sub(rb'\sUID="[^"]*"', b"", piece, count=1)
        if mode == "date":
            return re.sub(rb"(<(?:\w+:)?CreationTimeUTC>)(\d{4})-\d{2}-\d{2}", rb"\1\2-02-30", piece, count=1)
        field, value = {
            "port": (b"Port", b"9392/tcp"),
            "size": (b"TotalSize", b"12.5 GB"),
            "progress": (b"Progress", b"half"),
            "end": (b"EndTimeUTC", b"yesterday"),
        }[mode]
        pattern = rb"(<(?:\w+:)?" + field + rb">)[^<]*(</)"
        return re.sub(pattern, rb"\g<1>" + value + rb"\g<2>", piece, count=1)
