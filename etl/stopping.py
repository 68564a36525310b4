"""A stop asked for by SIGINT or SIGTERM, seen by every thread that loads: `handling_signals()` turns
either signal into `request()` and Interrupted in the main thread; the client calls `check()` before
every request and waits with `sleep()`, so a run on any thread (one per EM in a fleet) rolls back its
batch, records itself failed and releases its lock at its next request. Process-wide, as a signal is.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator

from .errors import Interrupted

log = logging.getLogger(__name__)

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


def _on_signal(signum: int, _frame) -> None:
    """SIGINT and SIGTERM end the command like Ctrl-C, in this (the main) thread and in every thread
    that loads; a second signal ends the process at once (the default handlers are back)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    request(signum)  # every other loading thread stops at its next request
    raise Interrupted(signum)


def _unraisable(previous):
    """A sys.unraisablehook that takes a stop raised where Python cannot propagate it (a finalizer:
    `__del__`, a weakref callback such as SQLAlchemy returning a garbage-collected connection) as
    asked for, quietly: `request()` was made before the raise, so every loading thread, this one
    included, still stops at its next request or the run's next stage (`check()`); a command with
    neither left finishes, and says so. Anything else goes to `previous`."""

    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            log.debug("%s in a finalizer: the run stops at its next request", unraisable.exc_value)
            return
        previous(unraisable)

    return hook


@contextlib.contextmanager
def handling_signals() -> Iterator[None]:
    """SIGINT and SIGTERM handled by `_on_signal` while the block runs, the previous handlers
    afterwards; a stop raised inside a finalizer is taken quietly (`_unraisable`). Only in the main
    thread: elsewhere signals are not ours to handle (a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    previous_hook = sys.unraisablehook
    for s in previous:
        signal.signal(s, _on_signal)
    sys.unraisablehook = _unraisable(previous_hook)
    try:
        yield
        stop = requested()
        if stop is not None:  # taken in a finalizer after the command's last check: it had finished
            log.warning("%s arrived as the command was finishing; it finished", stop.signame)
    finally:
        sys.unraisablehook = previous_hook
        for s, handler in previous.items():
            signal.signal(s, handler)
