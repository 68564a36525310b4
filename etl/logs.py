"""Logging setup for the CLI: text or JSON lines on stderr, and redaction of registered secrets.

Core modules only call logging.getLogger(__name__); the CLI calls setup() (again when options after
the command change it), registers every secret it reads (the EM password) with secret(), so no log
line can carry it, and ends with line(): its last word on stderr in the same format as the logs.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime

_SECRETS: set[str] = set()
_FORMAT = ["text"]  # the format setup() chose, for line()


def secret(value: str | None) -> None:
    """Register a value that must never appear in a log line."""
    if value and len(value) >= 3:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for value in _SECRETS:
        text = text.replace(value, "***")
    return text


class _Redacting(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            record.msg = redact(record.getMessage())
            record.args = None
        return True


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
        if record.exc_info:
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


def setup(verbose: int = 0, fmt: str = "text") -> None:
    """Log to stderr as text or JSON lines: INFO and up from etl (DEBUG with `verbose`), WARNING and up
    from everything else (httpx requests too with `verbose` >= 2). Calling it again replaces the setup."""
    _FORMAT[0] = fmt
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Redacting())
    if fmt == "json":
        handler.setFormatter(_Json())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    level = logging.INFO if verbose == 0 else logging.DEBUG
    logging.getLogger("etl").setLevel(level)
    if verbose < 2:
        logging.getLogger("httpx").setLevel(logging.WARNING)
