"""Checks of configuration values that need neither Enterprise Manager nor the warehouse.

Pure functions: each returns the value to use or raises ConfigError with one line that names the
value, what is wrong with it and the fix. The CLI calls them before it opens any connection, so a
mistyped flag never starts a run (and never leaves a run row behind).
"""

from __future__ import annotations

import ipaddress
import re
import ssl
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
        raise ConfigError(f"{flag} {url} has no scheme: write https://{url.lstrip('/')}")
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


def loopback(host: str) -> bool:
    """True for `localhost` and addresses in 127.0.0.0/8 or ::1: traffic that never leaves the machine."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cleartext(
    url: str, flag: str = "--url", allowed: bool = False, opt_out: str = "--allow-cleartext"
) -> bool:
    """Whether `url` (already checked by em_url) would send the EM password and session token over the
    network unencrypted: plain ``http://`` to a host that is not loopback (see `loopback`; the
    simulator, an SSH tunnel). Returns True for such a URL when `allowed` (the caller warns on every
    run), False for https:// and loopback. Raises ConfigError naming `flag`, the https:// URL to use
    and `opt_out` when it is not allowed: EM's logon is HTTP Basic (docs/security.md, "TLS")."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != "http" or loopback(parts.hostname or ""):
        return False
    if allowed:
        return True
    host = parts.hostname or ""
    port = 9398 if parts.port in (None, 9399) else parts.port
    name = f"[{host}]" if ":" in host else host
    raise ConfigError(
        f"{flag} {url.strip()} is plain HTTP to another machine: the EM password and session token would "
        f"cross the network unencrypted: use https://{name}:{port}{parts.path or '/api'} (EM's REST API "
        f"listens on 9398, https), or {opt_out} for a lab EM you accept that for"
    )


def ca_bundle(path: str, flag: str = "--ca-bundle") -> str:
    """A CA bundle for EM's certificate: a readable file of PEM certificates, loaded once here to prove
    it. Returns `path`. Raises ConfigError naming `flag`, the path and what is wrong (no such file,
    unreadable, not PEM), so a bad bundle stops the command before any run is recorded."""
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, ValueError):  # SSLError is an OSError: first
        raise ConfigError(
            f"cannot use the CA bundle {flag} {path}: it holds no PEM certificate (-----BEGIN CERTIFICATE-----); "
            "export EM's certificate as Base-64 (PEM), see docs/security.md"
        ) from None
    except FileNotFoundError:
        raise ConfigError(f"{flag} {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{flag} {path} is a directory: name the PEM file of EM's certificate") from None
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot read it: {exc.strerror or exc}") from None
    return path
