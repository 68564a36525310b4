"""HTTP client of one Enterprise Manager: logon, re-logon, retries, link safety, query URLs.

Knows HTTP and the EM session protocol, never tables. Thread-safe: the crawl fetches pages from a
small pool of threads through one client. Whether a failure is retried is decided in `_verdict` only.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from datetime import UTC, datetime
from urllib.parse import quote, urlencode, urljoin, urlsplit, urlunsplit

import httpx
from lxml import etree

from . import parse
from .errors import AuthError, ForeignLink, NotFound, ParseError, SourceError

log = logging.getLogger(__name__)

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
    """Bounded exponential backoff with full jitter; `Retry-After` honoured up to the cap."""

    def __init__(self, attempts: int = 6, base: float = 0.5, cap: float = 30.0, total: float = 300.0):
        self.attempts, self.base, self.cap, self.total = attempts, base, cap, total

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        return random.uniform(0, min(self.cap, self.base * 2**attempt))  # noqa: S311 - jitter


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return (when - datetime.now(UTC)).total_seconds()


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
        pool_size: int = 8,
    ):
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise SourceError(f"not an http(s) URL: {redact_url(url)!r}")
        self.base = url.rstrip("/") + "/"
        self.page_size = page_size
        self.retry = retry or RetryPolicy()
        self._user, self._password = user, password
        self._origin = origin(self.base)
        self._em_origins = {self._origin}  # origins EM writes into its own links
        self._http = httpx.Client(
            verify=verify,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            transport=transport,
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            follow_redirects=False,
        )
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
        create = next((ln for ln in parse.links(root) if ln.rel == "Create" and ln.type == "LogonSession"), None)
        if create is None:
            raise SourceError("EM root advertises no LogonSession link; is this an Enterprise Manager API URL?", self.base)
        self._em_origins.add(origin(urljoin(self.base, create.href)))
        self._logon(create.href)

    def _logon(self, href: str) -> None:
        url = self.resolve(href)
        response = self._send("POST", url, auth=False, basic=True)
        if response.status_code in (401, 403):
            raise AuthError(f"Enterprise Manager refused the logon of user {self._user!r} (HTTP {response.status_code})", url,
                            response.status_code)
        if response.status_code not in (200, 201):
            raise SourceError(f"logon answered HTTP {response.status_code}", url, response.status_code)
        token = response.headers.get(TOKEN_HEADER)  # httpx headers are case-insensitive
        if not token:
            raise SourceError(f"logon answered without a {TOKEN_HEADER} header", url)
        root = self._parse(response.content, url)
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
                try:
                    self._send("DELETE", self.resolve(self._logoff_href), relogon=False)
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
        """
        url = urljoin(self.base, href)
        parts = urlsplit(url)
        if origin(url) == self._origin:
            return url
        if origin(url) in self._em_origins:
            base = urlsplit(self.base)
            return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))
        with self._lock:
            self.foreign_links += 1
        raise ForeignLink(f"link to another origin refused: {parts.scheme}://{parts.netloc}", redact_url(url))

    def query_url(self, type_name: str, *, filter: str | None = None, sort_asc: str | None = None,
                  page: int = 1) -> str:
        params: dict[str, str | int] = {"type": type_name, "format": "Entities", "pageSize": self.page_size,
                                        "page": page}
        if filter:
            params["filter"] = filter
        if sort_asc:
            params["sortAsc"] = sort_asc
        assert self.query_href is not None, "log on first"
        return f"{self.query_href}?{urlencode(params, quote_via=quote)}"

    def get(self, href: str) -> etree._Element:
        """GET an href EM gave us (or a query URL) and return the parsed document."""
        return self._document("GET", self.resolve(href))

    def _document(self, method: str, url: str, auth: bool = True) -> etree._Element:
        attempt = 0
        started = time.monotonic()
        while True:
            response = self._send(method, url, auth=auth)
            try:
                if response.status_code == 401:
                    raise AuthError("Enterprise Manager answered 401 after a fresh logon", url, 401)
                if response.status_code == 404:
                    raise NotFound("not found (HTTP 404)", url, 404)
                if response.status_code >= 400:
                    message = parse.error_message(response.content) or response.reason_phrase
                    raise SourceError(f"HTTP {response.status_code}: {message[:300]}", url, response.status_code)
                return self._parse(response.content, url)
            except ParseError as exc:
                if not exc.retriable:
                    raise
                attempt += 1
                self._pause(attempt, None, started, exc)

    def _parse(self, body: bytes, url: str) -> etree._Element:
        return parse.document(body, url)

    def _send(self, method: str, url: str, auth: bool = True, basic: bool = False,
              relogon: bool = True) -> httpx.Response:
        """One logical request: transport retries, 429/5xx retries, one re-logon on 401."""
        attempt = 0
        started = time.monotonic()
        while True:
            with self._lock:
                token, generation = self._token, self._generation
                self.requests += 1
            headers = {"Accept": "application/xml"}
            if auth and token:
                headers[TOKEN_HEADER] = token
            try:
                response = self._http.request(
                    method, url, headers=headers, auth=(self._user, self._password) if basic else None
                )
            except httpx.TransportError as exc:
                attempt += 1
                self._pause(attempt, None, started, SourceError(f"{type(exc).__name__}: {exc}", url))
                continue
            verdict = self._verdict(response.status_code, auth and relogon)
            if verdict == "ok":
                return response
            if verdict == "relogon":
                relogon = False  # once per request
                self._relogon(generation)
                continue
            attempt += 1
            self._pause(attempt, _retry_after(response),
                        started, SourceError(f"HTTP {response.status_code}", url, response.status_code))

    @staticmethod
    def _verdict(status: int, may_relogon: bool) -> str:
        """The retry policy in one place: 'ok' (hand the response back), 'retry' (back off), 'relogon'.

        Retried: transport errors (in `_send`), 429 and 5xx, and bodies that do not parse (in
        `_document`). A 401 on an authenticated request logs on again once. Everything else is final.
        """
        if status in RETRY_STATUSES:
            return "retry"
        if status == 401 and may_relogon:
            return "relogon"
        return "ok"

    def _pause(self, attempt: int, retry_after: float | None, started: float, error: SourceError) -> None:
        elapsed = time.monotonic() - started
        delay = self.retry.delay(attempt - 1, retry_after)
        if attempt >= self.retry.attempts or elapsed + delay > self.retry.total:
            raise SourceError(f"giving up after {attempt} attempts in {elapsed:.0f} s: {error}") from None
        with self._lock:
            self.retries += 1
        log.warning("retrying in %.1f s (attempt %d): %s", delay, attempt, error)
        time.sleep(delay)

    def _relogon(self, generation: int) -> None:
        with self._logon_lock:
            if generation != self._generation:
                return  # another thread already logged on again
            log.info("session token rejected; logging on again")
            self._logon(self._create_href)
