"""A stop asked for by a signal, seen by every thread that loads: the CLI's SIGINT/SIGTERM handler
calls `request()`; the client checks `check()` before every request and waits with `sleep()`, so a
run on any thread (one per EM in a fleet run) raises `Interrupted` at its next request, rolls back
its batch, records itself failed and releases its lock. Process-wide, as a signal is.
"""

from __future__ import annotations

import threading

from .errors import Interrupted

_asked = threading.Event()
_signum: list[int] = []  # the first signal asked for, once


def request(signum: int) -> None:
    """Ask every loading thread to stop, for signal `signum` (the first one asked for is kept)."""
    if not _signum:
        _signum.append(signum)
    _asked.set()


def requested() -> Interrupted | None:
    """The interruption asked for, or None."""
    return Interrupted(_signum[0]) if _asked.is_set() else None


def check() -> None:
    """Raise Interrupted when a stop was asked for."""
    stop = requested()
    if stop is not None:
        raise stop


def sleep(seconds: float) -> None:
    """Wait `seconds`, or raise Interrupted as soon as a stop is asked for."""
    if _asked.wait(max(seconds, 0.0)):
        check()


def reset() -> None:
    """Forget a stop asked for (for a process that goes on after handling one, e.g. tests)."""
    _signum.clear()
    _asked.clear()
