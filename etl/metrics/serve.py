"""Where one collection goes: `write` puts it into a file atomically (--out, node_exporter's textfile
collector), `server` answers GET /metrics over HTTP, collecting on every scrape (--listen).
The collection itself: etl.metrics.collection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from sqlalchemy import Engine

from ..errors import ConfigError, VeeamEtlError
from .collection import exposition, registry

log = logging.getLogger(__name__)

FILE_MODE = 0o644  # node_exporter usually runs as another user than the one writing the file


# ------------------------------------------------------------------ the textfile
def write(eng: Engine, path: str | os.PathLike) -> Path:
    """Write one collection to `path` atomically: into a temporary file in the same directory (named
    `.<name>.*.tmp`, which node_exporter's textfile collector ignores: it reads `*.prom`), flushed to
    disk, mode 0644, then renamed over `path`, so a reader sees the old file or the new one, never part
    of one. A failing collection leaves the old file as it was. Returns the absolute path.

    Raises ConfigError (the directory does not exist or is not writable), VeeamEtlError (writing
    failed, e.g. the disk is full) or SQLAlchemyError (the warehouse could not be read)."""
    target = Path(path).absolute()
    directory = target.parent
    if not directory.is_dir():
        raise ConfigError(f"--out {path}: directory {directory} does not exist")
    if target.is_dir():
        raise ConfigError(f"--out {path} is a directory: name a file, e.g. {target / 'veeam.prom'}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {path}: directory {directory} is not writable by this user")
    if target.suffix != ".prom":
        log.warning("--out %s: node_exporter's textfile collector reads only files ending in .prom", path)
    body = exposition(eng)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a crash
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise VeeamEtlError(f"cannot write metrics to {target}: {exc.strerror or exc}") from None
    return target


# ------------------------------------------------------------------ the scrape endpoint
def listen_address(value: str) -> tuple[str, int]:
    """`HOST:PORT` as (host, port): an IPv6 address in brackets (`[::1]:9469`), an empty host for every
    IPv4 interface (`:9469`), port 0 for any free port. Raises ConfigError."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"--listen {value!r}: write HOST:PORT, e.g. 127.0.0.1:9469 or [::1]:9469")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"--listen {value!r}: write an IPv6 address in brackets, e.g. [::1]:{port}")
    return host or "0.0.0.0", int(port)


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)


def app(eng: Engine) -> Callable:
    """The WSGI application: GET /metrics collects and answers in the text format (gzip and OpenMetrics
    when the scraper asks, by prometheus_client); any other path is 404. A collection that fails answers
    500 with the cause in one line, logged as an error, and the next scrape tries again."""
    metrics_app = make_wsgi_app(registry(eng))

    def serve_metrics(environ, start_response):
        plain = [("Content-Type", "text/plain; charset=utf-8")]
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", plain)
            return [b"veeam-etl: the metrics are at /metrics\n"]
        try:
            return metrics_app(environ, start_response)
        except Exception as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            message = f"collecting metrics failed: {type(exc).__name__}: {detail[0] if detail else ''}"
            log.error("%s", message)
            start_response("500 Internal Server Error", plain)
            return [message.encode() + b"\n"]

    return serve_metrics


def server(eng: Engine, host: str, port: int) -> WSGIServer:
    """An HTTP server for app(eng) bound to (host, port), one thread per request; call serve_forever().
    Raises ConfigError when the address cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(ThreadingMixIn, WSGIServer):
        address_family = family
        daemon_threads = True

    try:
        return make_server(host, port, app(eng), server_class=Server, handler_class=_Handler)
    except OSError as exc:
        raise ConfigError(f"--listen {host}:{port}: cannot listen there: {exc.strerror or exc}") from None
