"""Fault-injection hook for the simulator (the default injects nothing).

The server calls `intercept(ctx)` before serving each request and `transform(ctx, ...)` on every
response it is about to send; a subclass can answer, delay, rewrite or drop requests.
"""

from __future__ import annotations

HANDLED = object()  # returned by intercept() when the fault already wrote (or dropped) the response


class Faults:
    """No faults. `ctx` is a `server.RequestContext`: method, path, raw_query, query (lower-case keys),
    segments, kind (root/logon/logoff/query/entity/reference/collection/children/admin/other), token,
    sim (the Simulator: check_token, expire_token, error(status, msg), drop_connections, world) and
    handler (the BaseHTTPRequestHandler; its wfile is buffered, so flush after raw writes and set
    `handler.close_connection = True` before returning HANDLED on a broken response). `ctx.extra` is
    free for the fault's own bookkeeping.
    """

    def intercept(self, ctx) -> None | tuple[int, dict[str, str], bytes] | object:
        """Return None to serve normally, `(status, headers, body)` to answer instead, or HANDLED."""
        return None

    def transform(self, ctx, status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Rewrite the response about to be sent (e.g. truncate the body)."""
        return status, headers, body
