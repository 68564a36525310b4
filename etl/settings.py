"""Configuration in one place: `Options` (how one run reads EM and writes the warehouse), `SETTINGS`
(every tunable run setting, each naming the `Options` field it sets: the CLI's flags and the estate
file's keys are built from it), and the checks of configuration values that need neither EM nor the
warehouse (EM URL, cleartext, CA bundle, schema name, --since). Imports only the errors and the retry policy.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .retry import RetryPolicy


@dataclass
class Options:
    """How one run reads EM and writes the warehouse."""

    page_size: int = 500
    concurrency: int = 4  # requests in flight: gentle enough for a production EM
    # pages fetched or being read ahead of the loader (None: 2 x concurrency). More than
    # `concurrency`, so that requests keep going out while fetched pages wait for a worker process.
    ahead: int | None = None
    full_refresh: bool = False
    since: datetime | None = None
    lookback: timedelta = timedelta(hours=1)  # read again before each watermark: late collection, clock skew
    timeout: float = 60.0
    batch_rows: int = 10_000  # rows per transaction (whole pages): fewer commits, bounded loss on a kill
    # processes that parse and transform the pages of long queries, beside the one that loads
    worker_processes: int = field(default_factory=lambda: min(2, max(1, (os.cpu_count() or 1) - 1)))
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    source: str | None = None  # the EM's name in the warehouse; defaults to its URL
    # the retention sweep of restore points, backup files and replica points: True always, False
    # never, None when the last one is `sweep_hours` old (inventory is swept every run, for free)
    sweep: bool | None = None
    sweep_hours: float = 24.0
    # the completeness check (etl.completeness: EM's counts against the warehouse's, what differs reloaded):
    # True always, False never, None when the last one is `verify_hours` old (and in every full load)
    verify: bool | None = None
    verify_hours: float = 24.0
    verify_days: float = 7.0  # days back it compares per backup server, type and day
    # only sweep, verify and reload what differs (`veeam-etl verify --repair`): no windows are read
    repair: bool = False


@dataclass(frozen=True)
class Setting:
    """One tunable run setting: `name` is the estate-file key; the flag is `--name-with-dashes`.

    `field` names what it sets in `Options` (default: `name`); a dotted name reaches into a field's
    object (`retry.attempts`: the attempts of the `RetryPolicy`). `convert` turns the value a user
    gives into the field's value (default: as given), e.g. hours into a `timedelta`.
    """

    name: str
    type: type
    low: float | None
    high: float | None
    default: Any
    help: str
    field: str = ""
    convert: Callable[[Any], Any] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def target(self) -> str:
        """The `Options` field this setting sets (dotted: an attribute of a field's object)."""
        return self.field or self.name

    def option_value(self, value: Any) -> Any:
        """`value` as the `Options` field holds it."""
        return value if self.convert is None else self.convert(value)

    def checked(self, value: Any, name: str) -> Any:
        """`value` read from a file (TOML: no click to check it), of this setting's type and in its
        range; an int where a float is wanted becomes a float. Raises ConfigError naming `name`."""
        if self.type is bool:
            ok = isinstance(value, bool)
        elif self.type is int:
            ok = type(value) is int
        else:
            ok = type(value) in (int, float)
        if not ok:
            kind = {bool: "true or false", int: "a whole number", float: "a number"}[self.type]
            raise ConfigError(f"{name}: must be {kind}, not {value!r}")
        if self.type is not bool and (
            (self.low is not None and value < self.low) or (self.high is not None and value > self.high)
        ):
            span = (
                f"from {self.low:g} to {self.high:g}" if self.high is not None else f"at least {self.low:g}"
            )
            raise ConfigError(f"{name}: must be {span}, not {value!r}")
        return float(value) if self.type is float else value


def hours(value: float) -> timedelta:
    """A number of hours as a timedelta."""
    return timedelta(hours=value)


_O, _R = Options(), RetryPolicy()
SETTINGS: tuple[Setting, ...] = (
    Setting("page_size", int, 1, 10_000, _O.page_size, "Entities per query page (jobs: at most 100)."),
    Setting("concurrency", int, 1, 32, _O.concurrency, "Requests in flight at once against EM."),
    Setting(
        "batch_rows",
        int,
        1,
        1_000_000,
        _O.batch_rows,
        "Rows per warehouse transaction (whole query pages); a killed run loses at most one batch.",
    ),
    Setting("timeout", float, 1, None, _O.timeout, "Seconds to wait for EM on one request."),
    Setting(
        "retries",
        int,
        1,
        100,
        _R.attempts,
        "Attempts per request at most (backoff from 0.5 s doubling to 15 s, jittered).",
        field="retry.attempts",
    ),
    Setting(
        "retry_time",
        float,
        1,
        None,
        _R.total,
        "Seconds one request may spend retrying: long enough to wait out an EM service restart.",
        field="retry.total",
    ),
    Setting(
        "lookback",
        float,
        0,
        None,
        _O.lookback.total_seconds() / 3600,
        "Hours before each watermark an incremental run reads again.",
        convert=hours,
    ),
    Setting("full_refresh", bool, None, None, False, "Ignore watermarks and read everything EM has."),
    Setting(
        "sweep_hours",
        float,
        0,
        None,
        _O.sweep_hours,
        "Hours between retention sweeps (EM's uid lists of restore points, files, replica points); "
        "0: every run.",
    ),
    Setting(
        "verify_hours",
        float,
        0,
        None,
        _O.verify_hours,
        "Hours between completeness checks in a run (EM's counts against the warehouse's, what differs "
        "reloaded; 0: every run; every full load checks).",
    ),
    Setting(
        "verify_days",
        float,
        0,
        None,
        _O.verify_days,
        "Days back the completeness check compares per backup server, type and day.",
    ),
)
BY_NAME = {s.name: s for s in SETTINGS}


def field_value(opts: Options, target: str) -> Any:
    """The value of an `Options` field named as `Setting.target` names it (dotted or not)."""
    value: Any = opts
    for part in target.split("."):
        value = getattr(value, part)
    return value


def options(values: dict[str, Any], **extra: Any) -> Options:
    """Options from setting values (keys of BY_NAME; None or absent: the setting's default) and
    `extra` Options fields (source, since, …). Every entry of SETTINGS sets its field."""
    opts = Options(**extra)
    copied: set[str] = set()
    for setting in SETTINGS:
        value = values.get(setting.name)
        if value is None:
            value = setting.default
        *path, last = setting.target.split(".")
        owner: Any = opts
        for depth, part in enumerate(path):
            outer = ".".join(path[: depth + 1])
            if outer not in copied:  # a field's object (the RetryPolicy) is this run's own, not shared
                setattr(owner, part, copy.copy(getattr(owner, part)))
                copied.add(outer)
            owner = getattr(owner, part)
        setattr(owner, last, setting.option_value(value))
    return opts


# ------------------------------------------------------------------------------------ value checks
# Pure functions: each returns the value to use or raises ConfigError with one line that names the
# value (by the flag or estate-file key it came from), what is wrong with it and the fix. They run
# before any connection opens, so a mistyped value never starts a run (nor leaves a run row behind).

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


def since(value: str | None, flag: str = "--since") -> datetime | None:
    """The instant of an ISO date or date-time (UTC unless it names an offset), or None for None.
    Raises ConfigError naming `flag` for what is not ISO or lies in the future (a run would read
    nothing and succeed)."""
    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{flag} {value!r} is not an ISO date or date-time") from None
    instant = instant if instant.tzinfo else instant.replace(tzinfo=UTC)
    now = datetime.now(UTC)
    if instant > now:
        raise ConfigError(
            f"{flag} {value} is in the future (it is {now:%Y-%m-%d %H:%M}Z now): give an instant in the "
            f"past, e.g. {flag} 2025-08-01 (UTC unless an offset is given)"
        )
    return instant
