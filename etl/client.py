"""HTTP client of one Enterprise Manager: logon, re-logon, retries, link safety, query URLs.

Knows HTTP and the EM session protocol, never tables. Thread-safe: the crawl fetches pages from a
small pool of threads through one client. Whether a failure is retried is decided in `_verdict` only.
"""

from __future__ import annotations

import email.utils
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple, TypeVar
from urllib.parse import quote, urlencode, urljoin, urlsplit, urlunsplit

import httpx
from lxml import etree

from . import parse
from .errors import AuthError, ConfigError, ForeignLink, HostileDocument, NotFound, ParseError, SourceError

log = logging.getLogger(__name__)
T = TypeVar("T")

TOKEN_HEADER = "X-RestSvcSessionId"  # noqa: S105 - a header name, not a secret
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)
    return parts.scheme.lower(), f"{(parts.hostname or '').lower()}:{port}"


def redact_url(url: str) -> str:
    """The URL without any user:password part (for logs and errors)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class RetryPolicy:
    """Bounded exponential backoff with full jitter; `Retry-After` honoured up to the cap.

    One logical request (a page, an entity, the logon) gets at most `attempts` tries and stops
    retrying once `total` seconds have passed since its first try; transport, HTTP and parse
    failures draw on the same budget.
    """

    def __init__(self, attempts: int = 6, base: float = 0.5, cap: float = 30.0, total: float = 300.0):
        self.attempts, self.base, self.cap, self.total = attempts, base, cap, total

    def __repr__(self) -> str:
        return f"RetryPolicy(attempts={self.attempts}, base={self.base}, cap={self.cap}, total={self.total})"

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        return random.uniform(0, min(self.cap, self.base * 2**attempt))  # noqa: S311 - jitter


class _Budget:
    """Attempts and time spent on one logical request."""

    __slots__ = ("attempts", "started", "tries")

    def __init__(self, attempts: int):
        self.attempts, self.started, self.tries = attempts, time.monotonic(), 0


class _Reply(NamedTuple):
    status: int
    headers: httpx.Headers
    body: bytes
    reason: str


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return (
            max(float(value), 0.0)
            if value.replace(".", "", 1).isdigit()
            else (email.utils.parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        )
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _certificate_problem(exc: BaseException) -> str | None:
    """The reason when a transport error is a refused TLS certificate (never retried), else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLCertVerificationError):
            return exc.verify_message or str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return str(exc).split("certificate verify failed:", 1)[-1].split("(_ssl", 1)[0].strip() or str(
                exc
            )
        exc = exc.__cause__ or exc.__context__
    return None


class EMClient:
    """A logged-on conversation with one Enterprise Manager.

    `url` is the API base (``https://em01:9398/api``). `verify` is True, False or a CA bundle path.
    Use as a context manager: logon on enter, logoff on exit even when the body raised.
    """

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        *,
        verify: bool | str = True,
        timeout: float = 60.0,
        page_size: int = 500,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        concurrency: int = 8,
    ):
        """`concurrency`: requests in flight at once, however many threads use the client."""
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise SourceError(f"not an http(s) URL: {redact_url(url)!r}")
        self.base = url.rstrip("/") + "/"
        self.page_size = page_size
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._user, self._password = user, password
        self._origin = origin(self.base)
        self._em_origins = {self._origin}  # origins EM writes into its own links
        if isinstance(verify, str):  # a CA bundle: trust exactly it (plus nothing else)
            try:
                verify = ssl.create_default_context(cafile=verify)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot use the CA bundle {verify}: {exc}") from None
        self._http = httpx.Client(
            verify=verify,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            transport=transport,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            follow_redirects=False,
        )
        self._in_flight = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._logon_lock = threading.Lock()
        self._token: str | None = None
        self._generation = 0  # bumps on every logon, so concurrent 401s re-logon once
        self._logoff_href: str | None = None
        self.query_href: str | None = None
        self.requests = 0
        self.retries = 0
        self.foreign_links = 0

    def __repr__(self) -> str:
        return f"EMClient({redact_url(self.base)!r}, user={self._user!r})"

    # --- session ----------------------------------------------------------------------------------

    def __enter__(self) -> EMClient:
        try:
            self.logon()
        except BaseException:
            self._http.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def logon(self) -> None:
        root = self._document("GET", self.base, auth=False)
        create = next(
            (ln for ln in parse.links(root) if ln.rel == "Create" and ln.type == "LogonSession"), None
        )
        if create is None:
            raise SourceError(
                "EM root advertises no LogonSession link; is this an Enterprise Manager API URL?", self.base
            )
        self._em_origins.add(origin(urljoin(self.base, create.href)))
        self._logon(create.href)

    def _logon(self, href: str) -> None:
        url = self.resolve(href)
        budget = _Budget(self.retry.attempts)
        while True:
            reply = self._send("POST", url, auth=False, basic=True, budget=budget)
            if reply.status in (401, 403):
                raise AuthError(
                    f"Enterprise Manager refused the logon of user {self._user!r} (HTTP {reply.status})",
                    url,
                    reply.status,
                )
            if reply.status not in (200, 201):
                raise SourceError(f"logon answered HTTP {reply.status}", url, reply.status)
            token = reply.headers.get(TOKEN_HEADER)  # httpx headers are case-insensitive
            if not token:
                raise SourceError(f"logon answered without a {TOKEN_HEADER} header", url)
            try:
                root = self._parse(reply.body, url)
                break
            except ParseError as exc:
                if not exc.retriable:
                    raise
                self._pause(budget, None, exc)
        self._http.cookies.clear()  # the header is the one credential we send
        session_links = parse.links(root)
        if root.get("Href"):
            self._em_origins.add(origin(urljoin(url, root.get("Href"))))
        with self._lock:
            self._token = token
            self._generation += 1
            self._create_href = href
            self._logoff_href = next((ln.href for ln in session_links if ln.rel == "Delete"), None)
            query = next((ln.href for ln in session_links if ln.type == "QueryService"), None)
            self.query_href = self.resolve(query) if query else urljoin(self.base, "query")
        log.info("logged on to %s as %s", redact_url(self.base), self._user)

    def close(self) -> None:
        """Log off (best effort) and close connections."""
        try:
            if self._token and self._logoff_href:
                try:  # one try: a dead EM must not hold the exit up for a whole retry budget
                    self._send("DELETE", self.resolve(self._logoff_href), relogon=False, budget=_Budget(1))
                except (SourceError, httpx.HTTPError) as exc:
                    log.warning("logoff failed: %s", exc)
        finally:
            self._token = None
            self._http.close()

    # --- requests ---------------------------------------------------------------------------------

    def resolve(self, href: str) -> str:
        """An absolute URL on the configured origin for an href EM gave us, or ForeignLink.

        EM writes its own host name into hrefs; when the user connects by another name or IP,
        hrefs on an origin EM itself used (root links, logon session) are moved to the configured one.
        Links to any other origin, and links that cannot be read as a URL, are refused and counted.
        """
        try:
            url = urljoin(self.base, href)
            parts = urlsplit(url)
            where = origin(url)
            if where == self._origin:
                final = url
            elif where in self._em_origins:
                base = urlsplit(self.base)
                final = urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))
            else:
                final = None
            if final is not None:
                httpx.URL(final)  # control characters and the like: httpx would refuse to send it
        except (ValueError, httpx.InvalidURL):
            self._refuse()
            raise ForeignLink(f"unreadable link refused: {href[:100]!r}") from None
        if final is None:
            self._refuse()
            raise ForeignLink(
                f"link to another origin refused: {parts.scheme}://{parts.netloc}", redact_url(url)
            )
        return final

    def _refuse(self) -> None:
        with self._lock:
            self.foreign_links += 1

    def query_url(
        self, type_name: str, *, filter: str | None = None, sort_asc: str | None = None, page: int = 1
    ) -> str:
        params: dict[str, str | int] = {
            "type": type_name,
            "format": "Entities",
            "pageSize": self.page_size,
            "page": page,
        }
        if filter:
            params["filter"] = filter
        if sort_asc:
            params["sortAsc"] = sort_asc
        assert self.query_href is not None, "log on first"
        return f"{self.query_href}?{urlencode(params, quote_via=quote)}"

    def get(self, href: str, read: Callable[[bytes, str], T] = parse.em_document) -> T:
        """GET an href EM gave us (or a query URL) and return `read(body, url)`, by default the parsed
        document. A ParseError that `read` raises counts as a failed attempt when it is retriable."""
        return self._document("GET", self.resolve(href), read=read)

    def _document(
        self, method: str, url: str, auth: bool = True, read: Callable[[bytes, str], T] = parse.em_document
    ) -> T:
        budget = _Budget(self.retry.attempts)
        while True:
            reply = self._send(method, url, auth=auth, budget=budget)
            try:
                if reply.status == 401:
                    raise AuthError("Enterprise Manager answered 401 after a fresh logon", url, 401)
                if reply.status == 404:
                    raise NotFound("not found (HTTP 404)", url, 404)
                if reply.status >= 400:
                    message = parse.error_message(reply.body) or reply.reason
                    raise SourceError(f"HTTP {reply.status}: {message[:300]}", url, reply.status)
                return read(reply.body, url)
            except ParseError as exc:
                if not exc.retriable:
                    raise
                self._pause(budget, None, exc)

    def _parse(self, body: bytes, url: str) -> etree._Element:
        return parse.document(body, url)

    def _send(
        self,
        method: str,
        url: str,
        *,
        auth: bool = True,
        basic: bool = False,
        relogon: bool = True,
        budget: _Budget | None = None,
    ) -> _Reply:
        """One logical request: transport retries, 429/5xx retries, one re-logon on 401."""
        budget = budget or _Budget(self.retry.attempts)
        stale = 0  # 401s for a token another thread has already replaced
        while True:
            with self._lock:
                token, generation = self._token, self._generation
                self.requests += 1
            headers = {"Accept": "application/xml"}
            if auth and token:
                headers[TOKEN_HEADER] = token
            sent = time.monotonic()
            try:
                reply = self._exchange(method, url, headers, (self._user, self._password) if basic else None)
                log.debug(
                    "%s %s -> HTTP %d, %d bytes in %.3f s",
                    method,
                    redact_url(url),
                    reply.status,
                    len(reply.body),
                    time.monotonic() - sent,
                )
            except httpx.TransportError as exc:
                if self._verdict(None, False, exc) == "fatal":
                    raise SourceError(
                        f"the TLS certificate of {urlsplit(url).netloc} was not accepted: "
                        f"{_certificate_problem(exc)}; trust EM's certificate or its CA with a CA "
                        f"bundle (--ca-bundle)",
                        redact_url(url),
                    ) from None
                self._pause(budget, None, SourceError(f"{type(exc).__name__}: {exc}", url))
                continue
            verdict = self._verdict(reply.status, auth and relogon)
            if verdict == "ok":
                return reply
            if verdict == "relogon":
                if self._relogon(generation):
                    relogon = False  # once per request
                else:
                    stale += 1  # another thread logged on meanwhile: repeat with its token
                    if stale > self.retry.attempts:
                        relogon = False
                continue
            message = parse.error_message(reply.body) or reply.reason
            self._pause(
                budget,
                _retry_after(reply.headers),
                SourceError(f"HTTP {reply.status} {message[:200]}", url, reply.status),
            )

    def _exchange(self, method: str, url: str, headers: dict[str, str], auth) -> _Reply:
        """Send one request and read the body, refusing more than MAX_BODY_BYTES and bodies that
        keep dripping in for longer than the timeout (httpx's timeout bounds each read, not the sum)."""
        with self._in_flight:
            return self._exchange_now(method, url, headers, auth)

    def _exchange_now(self, method: str, url: str, headers: dict[str, str], auth) -> _Reply:
        limit = parse.MAX_BODY_BYTES
        request = self._http.build_request(method, url, headers=headers)
        response = self._http.send(request, auth=auth, stream=True)
        try:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise HostileDocument(
                    f"response of {declared} bytes exceeds the {limit}-byte limit; lower the page size",
                    redact_url(url),
                )
            chunks, size = [], 0
            deadline = time.monotonic() + self.timeout
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise HostileDocument(
                        f"response body exceeds the {limit}-byte limit; lower the page size", redact_url(url)
                    )
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(
                        f"response body still arriving after {self.timeout:g} s", request=request
                    )
            return _Reply(response.status_code, response.headers, b"".join(chunks), response.reason_phrase)
        finally:
            response.close()

    @staticmethod
    def _verdict(status: int | None, may_relogon: bool, exc: BaseException | None = None) -> str:
        """The retry policy in one place: 'ok' (hand the response back), 'retry' (back off), 'relogon',
        or 'fatal' (a transport error retrying cannot cure).

        Retried: transport errors (connect/read timeouts, resets, cut-off bodies) except a refused TLS
        certificate, 429 and 5xx, and bodies that do not parse (`ParseError.retriable`, in
        `_document`). A 401 on an authenticated request logs on again once. Everything else is final.
        """
        if exc is not None:
            return "fatal" if _certificate_problem(exc) else "retry"
        if status in RETRY_STATUSES:
            return "retry"
        if status == 401 and may_relogon:
            return "relogon"
        return "ok"

    def _pause(self, budget: _Budget, retry_after: float | None, error: SourceError) -> None:
        budget.tries += 1
        elapsed = time.monotonic() - budget.started
        delay = self.retry.delay(budget.tries - 1, retry_after)
        if budget.tries >= budget.attempts or elapsed + delay > self.retry.total:
            raise SourceError(
                f"giving up after {budget.tries} attempts in {elapsed:.0f} s: {error}"
            ) from None
        with self._lock:
            self.retries += 1
        log.warning("retrying in %.1f s (attempt %d): %s", delay, budget.tries, error)
        time.sleep(delay)

    def _relogon(self, generation: int) -> bool:
        """Log on again unless another thread already did since `generation`; True if this call did."""
        with self._logon_lock:
            if generation != self._generation:
                return False  # another thread already logged on again
            log.info("session token rejected; logging on again")
            self._logon(self._create_href)
            return True
