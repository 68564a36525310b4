"""HTTP client of one Enterprise Manager: logon session, link safety, query URLs, verified bodies
after transport and HTTP retries under one `retry.Budget` (`retry.verdict` alone decides). Thread-safe,
at most `concurrency` requests in flight. Knows HTTP and the EM session protocol, never tables or
entity types; built by the Fetcher (etl.crawl) alone."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import quote, urlencode, urljoin, urlsplit, urlunsplit

import httpx
from lxml import etree

from . import parse, settings, stopping
from .errors import (
    AccessDenied,
    AuthError,
    ConfigError,
    ForeignLink,
    HostileDocument,
    NotFound,
    ParseError,
    SourceError,
)
from .retry import (
    Budget,
    RetryPolicy,
    causes,
    certificate_problem,
    plain_http_answer,
    retry_after,
    verdict,
)

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-RestSvcSessionId"  # noqa: S105 - a header name, not a secret
# Tries of a request that fails in transport before EM has answered anything in this run: a wrong
# host, port or scheme fails within seconds, naming the fix; the retry budget (--retries,
# --retry-time) is for an EM that has answered, e.g. one restarted mid-load.
FIRST_CONTACT_ATTEMPTS = 3

__all__ = ["EMClient", "RetryPolicy", "origin", "redact_url"]


def origin(url: str) -> tuple[str, str]:
    """(scheme, host:port) of a URL, with the scheme's default port filled in."""
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


class _Reply(NamedTuple):
    status: int
    headers: httpx.Headers
    body: bytes
    reason: str


class LogonSession:
    """The EM logon session: its token, a generation that bumps on every logon, the logoff link.

    When EM forgets the token (401: 15 minutes idle, a service restart) every thread that was using
    it calls `renew(generation_it_used)`; the first logs on again, the others find the generation
    moved and simply repeat with the new token.
    """

    def __init__(self, logon: Callable[[], tuple[str, str | None]]):
        """`logon()` performs one logon and returns (token, logoff href or None)."""
        self._logon = logon
        self._lock = threading.Lock()  # guards the fields below
        self._renewing = threading.Lock()  # one logon at a time (held while the logon requests run)
        self.token: str | None = None
        self.generation = 0
        self.logoff_href: str | None = None
        self._served = -1  # the newest generation whose token EM accepted at least once

    def served(self, generation: int) -> None:
        """A request with the token of `generation` was answered (not 401)."""
        with self._lock:
            self._served = max(self._served, generation)

    def expired(self, generation: int) -> bool:
        """Whether the token of `generation` (or a later one) was accepted before: a 401 for it is an
        expiry (idle, used up, a restart), not a refusal of the account."""
        with self._lock:
            return generation <= self._served

    def current(self) -> tuple[str | None, int]:
        with self._lock:
            return self.token, self.generation

    def renew(self, generation: int) -> bool:
        """Log on again unless another thread already did since `generation`; True if this call did."""
        with self._renewing:
            if generation != self.generation:
                return False
            if self.token is not None:
                log.info("session token rejected; logging on again")
            token, logoff = self._logon()
            with self._lock:
                self.token, self.logoff_href = token, logoff
                self.generation += 1
            return True

    def end(self) -> tuple[str | None, str | None]:
        """Forget the session; returns the (token, logoff href) it had."""
        with self._lock:
            token, href = self.token, self.logoff_href
            self.token = None
            return token, href


class EMClient:
    """A logged-on conversation with one Enterprise Manager.

    `url` is the API base (``https://em01:9398/api``). `verify` is True, False or a CA bundle path.
    Use as a context manager: logon on enter, logoff on exit even when the body raised.
    Raises ConfigError for an unusable URL or CA bundle.
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
        settings.em_url(url, "the EM URL")
        self.base = url.rstrip("/") + "/"
        self.page_size = page_size
        self.retry_policy = retry or RetryPolicy()
        self.timeout = timeout
        self._user, self._password = user, password
        self._origin = origin(self.base)
        self._em_origins = {self._origin}  # origins EM writes into its own links
        self._base_path = urlsplit(self.base).path  # e.g. /api/, or /veeam-em/api/ behind a proxy
        self._em_path = "/api/"  # the API path EM writes into its own links (read from the API root)
        trust: bool | ssl.SSLContext = verify if isinstance(verify, bool) else False
        if isinstance(verify, str):  # a CA bundle: trust exactly it (plus nothing else)
            try:
                trust = ssl.create_default_context(cafile=verify)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot use the CA bundle {verify}: {exc}") from None
        self._http = httpx.Client(
            verify=trust,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            transport=transport,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            follow_redirects=False,
        )
        self._in_flight = threading.BoundedSemaphore(concurrency)
        self._counts = threading.Lock()
        self.session = LogonSession(self._logon)
        self._create_href: str | None = None
        self.api_versions: list[str] = []  # the API root's SupportedVersions (v1_5 …), read at logon
        self.requests = 0
        self.retries = 0
        self.foreign_links = 0
        self.answered = False  # EM has answered a request (any HTTP status) in this client's life

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
        """Read the API root for the logon link, then log on. Raises AuthError, SourceError."""
        try:
            root = self.document(self.base, auth=False)
        except AccessDenied:
            raise AuthError(
                "Enterprise Manager refused to show its API root (HTTP 403)", redact_url(self.base), 403
            ) from None
        except NotFound:
            raise SourceError(
                "no Enterprise Manager API here (HTTP 404): the URL must be the API base, ending in /api, "
                "e.g. https://em01.example.com:9398/api",
                redact_url(self.base),
                404,
            ) from None
        create = next(
            (ln for ln in parse.links(root) if ln.rel == "Create" and ln.type == "LogonSession"), None
        )
        if create is None:
            raise SourceError(
                f"the API root answered <{parse.local(root)}> without a LogonSession link; is this an "
                "Enterprise Manager API URL (…:9398/api)?",
                redact_url(self.base),
            )
        created = urljoin(self.base, create.href)
        self._em_origins.add(origin(created))
        self.api_versions = [
            name for el in root.iter(parse.q(root, "SupportedVersion")) if (name := el.get("Name"))
        ]
        path = urlsplit(created).path
        if path.lower().endswith("/sessionmngr/"):  # EM's API path: what precedes sessionMngr/
            self._em_path = path[: -len("sessionMngr/")]
        self._create_href = create.href
        self.session.renew(self.session.generation)
        log.info("logged on to %s as %s", redact_url(self.base), self._user)

    def _logon(self) -> tuple[str, str | None]:
        """POST the logon (HTTP Basic); the token and the logoff link of the new session."""
        assert self._create_href is not None
        url = self.resolve(self._create_href)
        budget = self.retry_policy.budget()
        while True:
            reply = self._send("POST", url, budget, auth=False, basic=True)
            if reply.status in (401, 403):
                why = (
                    "wrong user name or password"
                    if reply.status == 401
                    else "the account has no EM role that may use the REST API (Portal Administrator, "
                    "Portal User or Restore Operator)"
                )
                raise AuthError(
                    f"Enterprise Manager refused the logon of user {self._user!r} (HTTP {reply.status}): {why}",
                    url,
                    reply.status,
                )
            if reply.status not in (200, 201):
                raise SourceError(f"logon answered HTTP {reply.status}", url, reply.status)
            token = reply.headers.get(TOKEN_HEADER)  # httpx headers are case-insensitive
            if not token:
                raise SourceError(f"logon answered without a {TOKEN_HEADER} header", url)
            try:
                root = parse.document(reply.body, url)
                break
            except ParseError as exc:
                self.wait_to_retry(budget, exc)
        self._http.cookies.clear()  # the header is the one credential we send
        if root.get("Href"):
            self._em_origins.add(origin(urljoin(url, root.get("Href"))))
        logoff = next((ln.href for ln in parse.links(root) if ln.rel == "Delete"), None)
        return token, logoff

    def close(self) -> None:
        """Log off (best effort, one try: a dead EM must not hold the exit up) and close connections."""
        try:
            token, logoff = self.session.end()
            if token and logoff:
                try:
                    self._count("requests")
                    self._exchange("DELETE", self.resolve(logoff), {TOKEN_HEADER: token}, None)
                except (SourceError, httpx.HTTPError) as exc:
                    log.warning("logoff failed: %s", exc)
        finally:
            self._http.close()

    # --- addresses --------------------------------------------------------------------------------

    def resolve(self, href: str) -> str:
        """An absolute URL on the configured origin and base path for an href EM gave us, or ForeignLink.

        EM writes its own host name into hrefs; when the user connects by another name or IP,
        hrefs on an origin EM itself used (root links, logon session) are moved to the configured one.
        Behind a reverse proxy that serves EM under a path prefix (``https://proxy/veeam-em/api``
        forwarding to EM's ``/api``), EM still writes ``/api/...``: such paths on EM's origins are
        rebased onto the configured base path. Links to any other origin, and links that cannot be
        read as a URL, are refused and counted.
        """
        try:
            url = urljoin(self.base, href)
            parts = urlsplit(url)
            where = origin(url)
            if where == self._origin or where in self._em_origins:
                base = urlsplit(self.base)
                final: str | None = urlunsplit(
                    (base.scheme, base.netloc, self._rebased(parts.path), parts.query, "")
                )
            else:
                final = None
            if final is not None:
                httpx.URL(final)  # control characters and the like: httpx would refuse to send it
        except (ValueError, httpx.InvalidURL):
            self._count("foreign_links")
            raise ForeignLink(f"unreadable link refused: {href[:100]!r}") from None
        if final is None:
            self._count("foreign_links")
            raise ForeignLink(
                f"link to another origin refused: {parts.scheme}://{parts.netloc}", redact_url(url)
            )
        return final

    def _rebased(self, path: str) -> str:
        """`path` with EM's own API path (``/api/``) replaced by the configured base path when they
        differ (a path-prefixed reverse proxy); a path already under the base path, or outside EM's
        API path, as it is."""
        base, em = self._base_path, self._em_path
        low = path.lower()
        if base.lower() == em.lower() or low.startswith(base.lower()):
            return path
        if low.startswith(em.lower()):
            return base + path[len(em) :]
        if low == em.rstrip("/").lower():
            return base.rstrip("/")
        return path

    def query_url(
        self,
        type_name: str,
        *,
        filter: str | None = None,
        sort_asc: str | None = None,
        page: int = 1,
        page_size: int | None = None,
        format: str = "Entities",
    ) -> str:
        """`<base>/query?type=…&format=…&pageSize=…&page=…[&filter=…][&sortAsc=…]`.

        Queries run at the API base plus `query`. The logon session's QueryService link
        (`/api/querySvc`) is a menu of preset queries that answers the menu whatever parameters it is
        given (em-api.md, "Logon session"), so it is never used.
        """
        params: dict[str, str | int] = {
            "type": type_name,
            "format": format,
            "pageSize": page_size or self.page_size,
            "page": page,
        }
        if filter:
            params["filter"] = filter
        if sort_asc:
            params["sortAsc"] = sort_asc
        return f"{self.base}query?{urlencode(params, quote_via=quote)}"

    # --- requests ---------------------------------------------------------------------------------

    def get(self, href: str, budget: Budget | None = None) -> bytes:
        """The body of a GET of an href EM gave us (or a query URL), after retries.

        Raises NotFound (404), AccessDenied (403: the account's role may not read it; never
        retried), AuthError (401 even after a fresh logon), SourceError (other 4xx/5xx
        once the budget is spent, transport failures), HostileDocument (an oversized body),
        ForeignLink (an href to another origin).
        """
        url = self.resolve(href)
        reply = self._send("GET", url, budget or self.retry_policy.budget())
        return self._body(reply, url)

    def document(self, href: str, auth: bool = True) -> etree._Element:
        """GET and parse an EM document; a body that does not parse is fetched again under the same
        budget (ParseError.retriable). Raises what `get` and `parse.em_document` raise."""
        url = self.resolve(href)
        budget = self.retry_policy.budget()
        while True:
            body = self._body(self._send("GET", url, budget, auth=auth), url)
            try:
                return parse.em_document(body, url)
            except ParseError as exc:
                self.wait_to_retry(budget, exc)

    def wait_to_retry(self, budget: Budget, error: ParseError) -> None:
        """After a body that did not parse: raise `error` if `retry.verdict` finds it fatal, else
        wait for the next try (SourceError when the budget is used up)."""
        if verdict(error=error) == "fatal":
            raise error
        self._wait(budget, error)

    def _wait(self, budget: Budget, error: BaseException, retry_after: float | None = None) -> None:
        """Sleep before the next try of a failure `verdict` found retriable (SourceError when the
        budget is used up)."""
        delay = budget.spend(error, retry_after)
        self._count("retries")
        log.warning("retrying in %.1f s (attempt %d): %s", delay, budget.tries, error)
        stopping.sleep(delay)  # Interrupted as soon as a signal asks the run to stop

    def _body(self, reply: _Reply, url: str) -> bytes:
        if reply.status == 401:
            raise AuthError("Enterprise Manager answered 401 after a fresh logon", url, 401)
        if reply.status == 404:
            raise NotFound("not found (HTTP 404)", url, 404)
        if reply.status == 403:
            message = parse.error_message(reply.body) or reply.reason
            raise AccessDenied(f"HTTP 403: {message[:300]}", url, 403)
        if reply.status >= 400:
            message = parse.error_message(reply.body) or reply.reason
            raise SourceError(f"HTTP {reply.status}: {message[:300]}", url, reply.status)
        return reply.body

    def _send(
        self, method: str, url: str, budget: Budget, *, auth: bool = True, basic: bool = False
    ) -> _Reply:
        """One logical request: transport retries, 429/5xx retries, one re-logon on 401."""
        relogon = auth
        stale = 0  # 401s for a token another thread has already replaced
        renewed = 0  # logons this request made
        while True:
            stopping.check()  # a signal asked the run to stop: no new request
            token, generation = self.session.current()
            headers = {"Accept": "application/xml"}
            if auth and token:
                headers[TOKEN_HEADER] = token
            self._count("requests")
            sent = time.monotonic()
            try:
                reply = self._exchange(method, url, headers, (self._user, self._password) if basic else None)
            except httpx.TransportError as exc:
                self._transport_failed(budget, exc, url)
                continue
            self.answered = True
            log.debug(
                "%s %s -> HTTP %d, %d bytes in %.3f s",
                method,
                redact_url(url),
                reply.status,
                len(reply.body),
                time.monotonic() - sent,
            )
            if auth and reply.status != 401:
                self.session.served(generation)
            # a 401 for a token another thread has replaced since, or that EM accepted before, is no
            # refusal of the account: the fresh token may be used up by the other threads before this
            # one repeats. Log on (or take the other thread's token) and repeat, a bounded number of times
            expired = self.session.current()[1] != generation or self.session.expired(generation)
            again = expired and stale + renewed < self.retry_policy.attempts
            decided = verdict(reply.status, may_relogon=relogon or again)
            if decided == "ok":
                return reply
            if decided == "relogon":
                if self.session.renew(generation):
                    relogon = False  # once per request, unless the new token worked for others
                    renewed += 1
                else:
                    stale += 1  # another thread logged on meanwhile: repeat with its token
                    relogon = stale <= self.retry_policy.attempts
                continue
            message = parse.error_message(reply.body) or reply.reason
            self._wait(
                budget,
                SourceError(f"HTTP {reply.status} {message[:200]}", url, reply.status),
                retry_after(reply.headers),
            )

    def _transport_failed(self, budget: Budget, exc: httpx.TransportError, url: str) -> None:
        if verdict(error=exc) == "retry":
            if not self.answered:
                self._first_contact_failed(budget, exc, url)
            self._wait(budget, SourceError(f"{type(exc).__name__}: {exc}", url))
            return
        where = urlsplit(url).netloc
        problem = certificate_problem(exc)
        if problem:
            raise SourceError(
                f"the TLS certificate of {where} was not accepted: {problem}; trust EM's certificate or its "
                "CA with a CA bundle (--ca-bundle)",
                redact_url(url),
            ) from None
        if plain_http_answer(exc):
            raise SourceError(
                f"{where} answers plain HTTP, not HTTPS: this is not EM's HTTPS port; EM's REST API listens "
                f"on 9398 with https (https://{urlsplit(url).hostname}:9398/api; plain http:// only to "
                "loopback or with --allow-cleartext)",
                redact_url(url),
            ) from None
        raise SourceError(f"{type(exc).__name__}: {exc}", redact_url(url)) from None

    def _first_contact_failed(self, budget: Budget, exc: httpx.TransportError, url: str) -> None:
        """A transport failure before EM has answered anything in this run: most likely a wrong host,
        port or scheme, not an EM restart (that one is waited out once EM has answered). Raises
        SourceError naming the likely fix once FIRST_CONTACT_ATTEMPTS tries have failed (at once when
        an http:// URL reached a server that speaks TLS); returns while tries are left."""
        tries = budget.tries + 1
        parts = urlsplit(url)
        where, host = parts.netloc, parts.hostname or ""
        fix = (
            "check the host and port in the URL (--url); EM's REST API listens on 9398 with https, "
            f"e.g. https://{host}:9398/api"
        )
        # a server that takes the connection and closes it unanswered may be waiting for a TLS handshake
        hung_up = isinstance(exc, httpx.ReadError | httpx.RemoteProtocolError)
        if parts.scheme == "http" and hung_up and tries == 1 and self._speaks_tls(host, parts.port or 80):
            tls = f"{host}:{parts.port or 80}"
            raise SourceError(
                f"{where} speaks HTTPS, not plain HTTP: use https://{tls}{self._path()}", redact_url(url)
            ) from None
        if tries < min(FIRST_CONTACT_ATTEMPTS, self.retry_policy.attempts):
            return
        lookup = next((c for c in causes(exc) if isinstance(c, socket.gaierror)), None)
        refused = next((c for c in causes(exc) if isinstance(c, ConnectionRefusedError)), None)
        if lookup is not None:
            problem = f"cannot resolve the host name {parts.hostname} ({lookup.strerror or lookup})"
            fix = "check the host name in the URL (--url), e.g. https://em01.example.com:9398/api"
        elif refused is not None:
            problem = (
                f"cannot connect to {where} ({refused.strerror or refused}): nothing listens on that port"
            )
        elif isinstance(exc, httpx.ConnectTimeout):
            problem = (
                f"no answer from {where} within {min(self.timeout, 15.0):g} s (connect timeout): a wrong "
                "address, or a firewall dropping the connection"
            )
        elif isinstance(exc, httpx.ConnectError):
            problem = f"cannot connect to {where} ({exc})"
        else:
            problem = f"{where} accepted the connection but gave no HTTP answer ({type(exc).__name__}: {exc})"
        raise SourceError(f"giving up after {tries} attempts: {problem}; {fix}", redact_url(url)) from None

    def _speaks_tls(self, host: str, port: int) -> bool:
        """Whether `host:port` completes a TLS handshake (nothing is sent but the handshake; no
        certificate check: only the protocol is asked)."""
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        probe.check_hostname, probe.verify_mode = False, ssl.CERT_NONE
        try:
            with (
                socket.create_connection((host, port), timeout=min(self.timeout, 5.0)) as raw,
                probe.wrap_socket(raw, server_hostname=host or None),
            ):
                return True
        except (OSError, ValueError):
            return False

    def _path(self) -> str:
        return urlsplit(self.base).path.rstrip("/") or "/api"

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

    def _count(self, counter: str) -> None:
        with self._counts:
            setattr(self, counter, getattr(self, counter) + 1)
