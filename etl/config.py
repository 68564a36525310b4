"""Checks of configuration values that need neither Enterprise Manager nor the warehouse.

Pure functions: each returns the value to use or raises ConfigError with one line that names the
value, what is wrong with it and the fix. The CLI calls them before it opens any connection, so a
mistyped flag never starts a run (and never leaves a run row behind).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .errors import ConfigError

EM_PORTS = "EM's REST API listens on 9398 (https) or 9399 (http)"
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")


def em_url(value: str, flag: str = "--url") -> str:
    """The Enterprise Manager API base, e.g. ``https://em01:9398/api``: http or https, a host, a port
    in 1..65535 when one is given, no user or password in it. Returns `value` stripped of spaces.

    Raises ConfigError naming `flag` (the message never repeats a password given in the URL)."""
    url = value.strip()
    if not url:
        raise ConfigError(f"{flag} is empty: give the EM API base, e.g. https://em01.example.com:9398/api")
    if "://" not in url:
        raise ConfigError(
            f"{flag} {url} has no scheme: write https://{url.lstrip('/')} (or http:// for EM's plain-HTTP port)"
        )
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"{flag} carries a user or password: give the user with --user and the password in "
            "VEEAM_EM_PASSWORD or --password-file, never in the URL"
        )
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(
            f"{flag} {url}: scheme {parts.scheme}:// is not supported: use https:// (or http://); {EM_PORTS}"
        )
    if not parts.hostname:
        raise ConfigError(f"{flag} {url} has no host: write e.g. {scheme}://em01.example.com:9398/api")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        given = parts.netloc.rpartition(":")[2]
        raise ConfigError(f"{flag} {url}: port {given} is not a port number (1-65535); {EM_PORTS}")
    if parts.query or parts.fragment:
        raise ConfigError(
            f"{flag} {url}: a query or fragment has no place in the API base: "
            f"write {scheme}://{parts.netloc}{parts.path}"
        )
    return url


def schema_name(value: str | None, flag: str = "--db-schema") -> str | None:
    """A PostgreSQL schema name usable in a search_path: a plain identifier (letters, digits, _ and $,
    not starting with a digit, at most 63 characters), lower-cased as PostgreSQL folds it; or None.
    Raises ConfigError."""
    if value is None:
        return None
    if not _SCHEMA_NAME.fullmatch(value):
        raise ConfigError(
            f"{flag} {value!r} is not a plain schema name: use letters, digits and _ "
            "(not starting with a digit, at most 63), e.g. veeam"
        )
    return value.lower()
