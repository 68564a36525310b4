"""Logging setup for the CLI: text or JSON lines on stderr, the status line below them, and
redaction of registered secrets.

Core modules only call logging.getLogger(__name__); the CLI calls setup() (again when options after
the command change it), registers every secret it reads (the EM password) with secret(), so no log
line can carry it, and ends with line(): its last word on stderr in the same format as the logs.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from datetime import UTC, datetime

_SECRETS: set[str] = set()
_PUBLIC: set[str] = set()  # values shown as they are, whatever secret they contain (user names)
_FORMAT = ["text"]  # the format setup() chose, for line()


def secret(value: str | None) -> None:
    """Register a value that must never appear in a log line."""
    if value and len(value) >= 3:
        _SECRETS.add(value)


def is_secret(value: str) -> bool:
    """Whether `value` is a registered secret (e.g. an environment variable holding the password)."""
    return value in _SECRETS


def public(value: str | None) -> None:
    """Register a value that is shown as it is, e.g. the EM user name: a password equal to it (the
    simulator's demo/demo) or inside it does not mask it; the password stays masked everywhere else."""
    if value:
        _PUBLIC.add(value)


def redact(text: str) -> str:
    """`text` with every registered secret replaced by ***, except where the secret lies wholly
    inside a registered public value. A public value inside a secret (a password that holds the
    user name) does not keep any of the secret: each occurrence of a secret is found in the whole
    text before anything is kept."""
    if not _SECRETS:
        return text
    if not _PUBLIC:
        return _mask(text)
    kept = [m.span() for v in _PUBLIC for m in re.finditer(re.escape(v), text)]
    masked = sorted(
        m.span()
        for v in _SECRETS
        for m in re.finditer(re.escape(v), text)
        if not any(a <= m.start() and m.end() <= b for a, b in kept)
    )
    out, pos = [], 0
    for start, end in masked:  # secrets that overlap are covered by one ***
        if start >= pos:
            out += [text[pos:start], "***"]
        pos = max(pos, end)
    out.append(text[pos:])
    return "".join(out)


def _mask(text: str) -> str:
    for value in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


class _Redacting(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            record.msg = redact(record.getMessage())
            record.args = None
        return True


def _stop_only(exc: BaseException | None) -> bool:
    """A stop (SIGINT, SIGTERM: a KeyboardInterrupt, see etl.stopping) and nothing else: no error it
    interrupted is chained to it (that one is still reported, traceback and all)."""
    if not isinstance(exc, KeyboardInterrupt):
        return False
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if not isinstance(exc, KeyboardInterrupt):
            return False
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return True


class _Interruption(logging.Filter):
    """A stop is said once, by the CLI's closing line. A library that logs it on its way out
    (SQLAlchemy's pool logs "Exception during reset or similar" with the traceback when the signal
    lands while a connection is rolled back on return, then re-raises it) is not reporting an error
    of its own: its record is dropped. An etl record keeps its message (the formatters leave the
    traceback of a stop out, `_Text`, `_Json`). A stop chained to a real error is not a stop only."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not _stop_only(exc) or record.name == "etl" or record.name.startswith("etl.")


class _Text(logging.Formatter):
    def formatException(self, ei) -> str:  # noqa: N802 - logging's name
        return "" if _stop_only(ei[1]) else super().formatException(ei)


def _entry(created: float, level: str, logger: str, message: str) -> dict:
    return {
        "time": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "logger": logger,
        "message": message,
    }


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = _entry(record.created, record.levelname.lower(), record.name, record.getMessage())
        if record.exc_info and not _stop_only(record.exc_info[1]):
            entry["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


def line(message: str, level: str = "error", fmt: str | None = None) -> str:
    """The CLI's closing line for stderr (no newline), secrets redacted: ``veeam-etl: error: MESSAGE``
    (``veeam-etl: MESSAGE`` for another level) as text, or one JSON object shaped like a JSON log line
    (time, level, logger "etl.cli", message). `fmt` defaults to what setup() chose."""
    message = redact(message)
    if (fmt or _FORMAT[0]) == "json":
        return json.dumps(_entry(time.time(), level, "etl.cli", message))
    return f"veeam-etl: error: {message}" if level == "error" else f"veeam-etl: {message}"


class StatusLine:
    """One self-overwriting line at the bottom of stderr on a terminal (the progress of `run`). Log
    lines go above it: the handler setup() installs clears it before each one and draws it again
    after, so neither overwrites the other. Thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.text = ""
        self._drawn = 0  # columns the line on screen takes

    def show(self, text: str) -> None:
        with self.lock:
            self.text = text
            self._write("\r" + text.ljust(self._drawn))
            self._drawn = max(self._drawn, len(text))

    def hide(self) -> None:
        """Blank the line on screen (the cursor back at its start); `text` is kept for redraw()."""
        with self.lock:
            if self._drawn:
                self._write("\r" + " " * self._drawn + "\r")
                self._drawn = 0

    def redraw(self) -> None:
        with self.lock:
            if self.text:
                self.show(self.text)

    def end(self) -> None:
        """Blank the line for good."""
        with self.lock:
            self.hide()
            self.text = ""

    @staticmethod
    def _write(chars: str) -> None:
        sys.stderr.write(chars)
        sys.stderr.flush()


STATUS = StatusLine()


class _Handler(logging.StreamHandler):
    """stderr, with the status line cleared before a log line and drawn again after it."""

    def emit(self, record: logging.LogRecord) -> None:
        with STATUS.lock:
            STATUS.hide()
            super().emit(record)
            STATUS.redraw()


def setup(verbose: int = 0, fmt: str = "text") -> None:
    """Log to stderr as text or JSON lines: INFO and up from etl (DEBUG with `verbose`), WARNING and up
    from everything else (httpx requests too with `verbose` >= 2). Calling it again replaces the setup."""
    _FORMAT[0] = fmt
    handler = _Handler(sys.stderr)
    handler.addFilter(_Interruption())
    handler.addFilter(_Redacting())
    if fmt == "json":
        handler.setFormatter(_Json())
    else:
        handler.setFormatter(_Text("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    level = logging.INFO if verbose == 0 else logging.DEBUG
    logging.getLogger("etl").setLevel(level)
    if verbose < 2:
        logging.getLogger("httpx").setLevel(logging.WARNING)
