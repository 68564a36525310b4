"""Whether a failed request is tried again, and how long to wait first: the retry policy in one place.

One logical request (the logon, one page, one entity) carries one `Budget`: at most
`RetryPolicy.attempts` tries, and no new try once `RetryPolicy.total` seconds have passed since the
first. Transport errors, HTTP statuses and bodies that do not parse all draw on it; `verdict()`
alone decides which failures are worth another try. Knows httpx's exceptions, nothing of EM.
"""

from __future__ import annotations

import email.utils
import random
import ssl
import time
from datetime import UTC, datetime
from typing import Literal

import httpx

from .errors import ParseError, SourceError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
Verdict = Literal["ok", "retry", "relogon", "fatal"]


def certificate_problem(exc: BaseException | None) -> str | None:
    """The reason when a transport error is a refused TLS certificate, else None."""
    for cause in causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause.verify_message or str(cause)
        if "CERTIFICATE_VERIFY_FAILED" in str(cause):
            text = str(cause).split("certificate verify failed:", 1)[-1].split("(_ssl", 1)[0].strip()
            return text or str(cause)
    return None


def plain_http_answer(exc: BaseException | None) -> bool:
    """True when a TLS handshake failed because the server answered in plain HTTP (an https:// URL
    pointed at an http port): OpenSSL reports WRONG_VERSION_NUMBER or a record-layer failure."""
    return any(
        "WRONG_VERSION_NUMBER" in str(cause) or "record layer failure" in str(cause) for cause in causes(exc)
    )


def causes(exc: BaseException | None):
    """`exc` and the exceptions it was raised from or while handling, outermost first."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def verdict(
    status: int | None = None, error: BaseException | None = None, may_relogon: bool = False
) -> Verdict:
    """What to do about one attempt: 'ok' (hand the answer back), 'retry' (back off and try again),
    'relogon' (log on again, then repeat) or 'fatal' (no try can cure it).

    Retried: transport errors (refused or reset connections, timeouts, bodies cut short), HTTP 429
    and 5xx, and bodies that do not parse when `ParseError.retriable` (a cut-off transfer, an
    `<Error>` answered with 200). Fatal: a refused TLS certificate, TLS spoken to a plain-HTTP port,
    a hostile document. A 401 on an authenticated request logs on again (once per request); every
    other status is handed back for the caller to judge.
    """
    if error is not None:
        if isinstance(error, ParseError):
            return "retry" if error.retriable else "fatal"
        if isinstance(error, httpx.TransportError):
            return "fatal" if certificate_problem(error) or plain_http_answer(error) else "retry"
        return "fatal"
    if status in RETRY_STATUSES:
        return "retry"
    if status == 401 and may_relogon:
        return "relogon"
    return "ok"


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        if value.replace(".", "", 1).isdigit():
            return max(float(value), 0.0)
        return (email.utils.parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class RetryPolicy:
    """Capped exponential backoff with jitter under a per-request time budget.

    Before try n+1 the client sleeps between half and all of min(cap, base × 2ⁿ⁻¹) seconds (or EM's
    `Retry-After`, up to `cap`). A request stops after `attempts` tries or once `total` seconds have
    passed since its first try, whichever comes first. The defaults (20 tries, 120 s) wait out an EM
    service restart or an IIS recycle of a minute or two; a source that stays down fails the run
    after about two minutes.
    """

    def __init__(self, attempts: int = 20, base: float = 0.5, cap: float = 15.0, total: float = 120.0):
        self.attempts, self.base, self.cap, self.total = attempts, base, cap, total

    def __repr__(self) -> str:
        return f"RetryPolicy(attempts={self.attempts}, base={self.base}, cap={self.cap}, total={self.total})"

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (0 for the first retry)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        step = min(self.cap, self.base * 2**retry)
        return random.uniform(step / 2, step)  # noqa: S311 - jitter, not cryptography

    def budget(self) -> Budget:
        return Budget(self)


class Budget:
    """The tries and time one logical request has left. `spend()` is called after each failed try."""

    __slots__ = ("policy", "started", "tries")

    def __init__(self, policy: RetryPolicy):
        self.policy, self.started, self.tries = policy, time.monotonic(), 0

    def spend(self, error: BaseException, retry_after: float | None = None) -> float:
        """Count a failed try (one `verdict()` called retriable); the seconds to wait before the next.

        Raises SourceError ("giving up after N attempts in S s: <error>") when the tries or the time
        are used up; when it is the time, the message says how long the next wait would have been
        (EM's `Retry-After` when it asked) and the retry time it would pass (`--retry-time`).
        """
        self.tries += 1
        elapsed = time.monotonic() - self.started
        delay = self.policy.delay(self.tries - 1, retry_after)
        if self.tries >= self.policy.attempts:
            raise SourceError(f"giving up after {self.tries} attempts in {elapsed:.0f} s: {error}") from None
        if elapsed + delay > self.policy.total:
            asked = ""
            if retry_after is not None:
                capped = f", waits capped at {self.policy.cap:g} s" if retry_after > self.policy.cap else ""
                asked = f"; EM's Retry-After asked for {retry_after:.0f} s{capped}"
            raise SourceError(
                f"giving up after {self.tries} attempts in {elapsed:.0f} s (the next try in {delay:.0f} s"
                f"{asked}; it would pass the retry time of {self.policy.total:g} s, --retry-time): {error}"
            ) from None
        return delay
