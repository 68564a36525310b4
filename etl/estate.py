"""The estate file (TOML: [defaults], [[em]], [schedule], parallel) and `Connection`, the one
description of how to reach an Enterprise Manager (url, user, password source, TLS trust, cleartext
opt-in) with its checks and warnings, built from the flags of `run`, `verify` and `check` or from an
[[em]] table. Imports only settings, logs and errors.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import tomllib
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from . import logs, settings
from .errors import ConfigError, EstateError
from .settings import Options

log = logging.getLogger(__name__)

DEFAULT_PARALLEL = 4
DEFAULT_CRON = "*/15 * * * *"
# where the connection the flags describe finds the password when --password-file is not given
PASSWORD_ENV = "VEEAM_EM_PASSWORD"  # noqa: S105 - the name of a variable

# How messages name a connection's fields: by the flag, or by the estate-file key (after "em 'name': ").
_FLAG_NAMES = {
    "url": "--url",
    "password_file": "--password-file",
    "ca_bundle": "--ca-bundle",
    "insecure": "--insecure",
    "allow_cleartext": "--allow-cleartext",
}
_KEY_NAMES = {
    "url": "key 'url'",
    "password_file": "password_file",
    "ca_bundle": "ca_bundle",
    "insecure": "insecure = true",
    "allow_cleartext": "allow_cleartext = true",
}


@dataclass(frozen=True)
class Credentials:
    """What a client logs on to EM with: the checked URL, the user, the password (never in a repr)
    and the TLS `verify` argument (True: the system trust store; a CA bundle's path; False: off)."""

    url: str
    user: str
    password: str = field(repr=False)
    verify: bool | str = True


@dataclass(frozen=True)
class Connection:
    """Which Enterprise Manager, as whom, trusting what. The password is never held, only where it
    is: the file `password_file`, else the environment variable `password_env`.

    `entry` is the estate-file entry it comes from as messages name it (``em 'em-lon'``); None when
    it comes from the command line, whose messages name flags (`from_flags`). Build it with
    `from_flags` or `parse`, which check it (`checked`); `open` reads the password and decides TLS.
    """

    url: str
    user: str
    password_env: str | None = None
    password_file: Path | None = None
    ca_bundle: Path | None = None
    insecure: bool = False
    allow_cleartext: bool = False  # plain http:// to a host that is not loopback (a lab; warned)
    entry: str | None = None

    @classmethod
    def from_flags(
        cls,
        url: str,
        user: str,
        password_file: str | None = None,
        ca_bundle: str | None = None,
        insecure: bool = False,
        allow_cleartext: bool = False,
    ) -> Connection:
        """The connection the flags describe (the password from --password-file, else
        VEEAM_EM_PASSWORD), checked. Raises ConfigError naming the flag."""
        return cls(
            url,
            user,
            password_env=None if password_file else PASSWORD_ENV,
            password_file=Path(password_file) if password_file else None,
            ca_bundle=Path(ca_bundle) if ca_bundle else None,
            insecure=insecure,
            allow_cleartext=allow_cleartext,
        ).checked()

    @property
    def _where(self) -> str:
        """What starts this connection's messages: nothing for flags, ``em 'em-lon': `` for an entry."""
        return "" if self.entry is None else f"{self.entry}: "

    def _label(self, key: str) -> str:
        """`key` as this connection's messages name it: its flag, or its estate-file key."""
        return (_FLAG_NAMES if self.entry is None else _KEY_NAMES)[key]

    def checked(self) -> Connection:
        """This connection with its URL checked (settings.em_url) and stripped; plain HTTP to
        another machine is refused unless `allow_cleartext` (settings.cleartext; docs/security.md,
        "TLS"). Reads nothing. Raises ConfigError naming the flag or the estate-file key."""
        url = settings.em_url(self.url, self._where + self._label("url"))
        settings.cleartext(
            url, self._where + self._label("url"), self.allow_cleartext, self._label("allow_cleartext")
        )
        return replace(self, url=url)

    def tls(self) -> bool | str:
        """The client's TLS `verify` argument: False when `insecure` (warned), the CA bundle's path
        once it proved to hold PEM certificates, else True. Warns about allowed plain HTTP to another
        machine too: on every call, as on every run. Raises ConfigError for an unusable CA bundle."""
        if settings.cleartext(self.url, allowed=self.allow_cleartext):
            log.warning(
                "%s%s is plain HTTP (%s): the EM password and session token cross the network "
                "unencrypted; use https:// (port 9398)",
                self._where,
                self.url,
                self._label("allow_cleartext"),
            )
        if self.insecure:
            log.warning(
                "%sTLS certificate verification is OFF (%s): anyone on the path can read the EM password",
                self._where,
                self._label("insecure"),
            )
            return False
        if self.ca_bundle is not None:
            return settings.ca_bundle(str(self.ca_bundle), self._where + self._label("ca_bundle"))
        return True

    def password(self, ask: Callable[[], str] | None = None) -> str:
        """The EM password: the file's text without its line ending, else the variable's value, else
        what `ask` returns (the CLI asks on a terminal). Registered with etl.logs as a secret, and
        the user as shown as it is, so no log line carries the password. Raises ConfigError naming
        the file or the variable, never the value."""
        if self.password_file is not None:
            file = self._label("password_file")
            try:
                value = self.password_file.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(
                    f"{self._where}cannot read {file} {self.password_file}: {exc.strerror or exc}"
                ) from None
            except UnicodeDecodeError:
                raise ConfigError(f"{self._where}{file} {self.password_file} is not UTF-8 text") from None
            if not value:
                raise ConfigError(f"{self._where}{file} {self.password_file} is empty")
        else:
            value = os.environ.get(self.password_env or "", "")
            if not value and ask is not None:
                value = ask()
            if not value and self.entry is None:
                raise ConfigError(
                    f"no password: set {self.password_env}, use --password-file, or run on a terminal to be asked"
                )
            if not value:
                raise ConfigError(
                    f"{self.entry}: environment variable {self.password_env} (password_env) is not set"
                )
        logs.secret(value)
        logs.public(self.user)  # shown as it is, even when the password equals it
        return value

    def open(self, ask: Callable[[], str] | None = None) -> Credentials:
        """The credentials to log on with: TLS decided first (`tls`: a connection that cannot be
        used asks for no password), then the password (`password`). Raises ConfigError."""
        verify = self.tls()
        return Credentials(self.url, self.user, self.password(ask), verify)


# An [[em]] or [defaults] table holds the connection's fields (but `entry`) and the run settings.
CONNECTION_KEYS = tuple(f.name for f in fields(Connection) if f.name != "entry")
EM_KEYS = ("name", *CONNECTION_KEYS, *settings.BY_NAME)
DEFAULT_KEYS = tuple(k for k in EM_KEYS if k not in ("name", "url"))
TOP_KEYS = ("defaults", "em", "schedule", "parallel")
SCHEDULE_KEYS = ("cron", "timezone")
# flags of `run` and `check` that each EM gives in the file, so `--config` excludes them ...
PER_EM_FLAGS = ("url", "user", "password_file", "ca_bundle", "insecure", "allow_cleartext", "source_name")
# ... and flags of `run` that `--config` applies to every EM of the file, over what the file says
OVERRIDE_FLAGS = (*settings.BY_NAME, "since")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# pairs of keys of which one table may give one; the EM's choice replaces the pair from [defaults]
_EXCLUSIVE = (("password_env", "password_file"), ("ca_bundle", "insecure"))


@dataclass(frozen=True)
class EM:
    """One Enterprise Manager of an estate file, [defaults] applied: its `name` in the warehouse
    (the `source` of its rows), its connection, and the run settings the file gives it
    (`run_settings`, keys of etl.settings.BY_NAME; the others keep their defaults). Paths are absolute."""

    name: str
    connection: Connection
    run_settings: dict[str, Any] = field(default_factory=dict)

    def options(self, overrides: dict[str, Any] | None = None) -> Options:
        """The run's Options: the file's settings, then `overrides` (keys of OVERRIDE_FLAGS), over
        the defaults; `source` is the EM's name."""
        values = {**self.run_settings, **(overrides or {})}
        return settings.options(values, source=self.name, since=values.get("since"))


@dataclass(frozen=True)
class Estate:
    """A validated estate file: its EMs in file order, the schedule orchestrators read, and how many
    EMs load at once by default."""

    path: Path
    ems: tuple[EM, ...]
    cron: str = DEFAULT_CRON
    timezone: str = "UTC"
    parallel: int = DEFAULT_PARALLEL

    def names(self) -> list[str]:
        return [em.name for em in self.ems]

    def select(self, only: Iterable[str]) -> Estate:
        """The EMs named in `only` (all when empty), in file order. Raises ConfigError on an unknown name."""
        wanted = list(dict.fromkeys(only))
        if not wanted:
            return self
        unknown = [n for n in wanted if n not in self.names()]
        if unknown:
            raise ConfigError(
                f"{self.path}: no [[em]] named {', '.join(map(repr, unknown))} (the file has: {', '.join(self.names())})"
            )
        return replace(self, ems=tuple(em for em in self.ems if em.name in wanted))


def load(path: str | os.PathLike) -> Estate:
    """Read and validate an estate file. Raises EstateError (exit 2) naming every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EstateError([f"{path}: cannot read the estate file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise EstateError([f"{path}: not UTF-8 text"]) from None
    return parse(text, path)


def parse(text: str, path: str | os.PathLike = "estate.toml") -> Estate:
    """Validate estate-file text; `path` names the file in messages and anchors relative paths.
    Nothing is read but the text: secrets and CA bundles are read when an EM's load starts
    (`Connection.open`). Raises EstateError with one line per problem (file, EM, key)."""
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EstateError([f"{path}: not valid TOML: {exc}"]) from None
    problems: list[str] = []

    def problem(where: str, message: str) -> None:
        problems.append(f"{path}: {where}: {message}")

    for key in data:
        if key not in TOP_KEYS:
            problem(f"key {key!r}", _unknown(key, TOP_KEYS))
    base = path.parent
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        problem("key 'defaults'", "must be a table: [defaults]")
        defaults = {}
    checked_defaults = _check_table(defaults, "[defaults]", DEFAULT_KEYS, base, problem)

    tables = data.get("em", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        problem("key 'em'", "must be an array of tables: [[em]]")
        tables = []
    if not tables and not problems:
        problem("[[em]]", "no Enterprise Manager listed (add an [[em]] table with name, url, user)")
    ems = [
        em
        for i, table in enumerate(tables, 1)
        if (em := _em(table, i, tables, defaults, checked_defaults, base, problem)) is not None
    ]
    cron, timezone = _schedule(data.get("schedule", {}), problem)
    parallel = data.get("parallel", DEFAULT_PARALLEL)
    if type(parallel) is not int or not 1 <= parallel <= 64:
        problem("key 'parallel'", "must be a whole number from 1 to 64")
        parallel = DEFAULT_PARALLEL
    if problems:
        raise EstateError(problems)
    return Estate(path, tuple(ems), cron, timezone, parallel)


def _em(
    table: dict, i: int, tables: list[dict], defaults: dict, checked_defaults: dict, base: Path, problem
) -> EM | None:
    """The EM of the `i`-th [[em]] table with [defaults] applied, or None once its problems are reported."""
    raw_name = table.get("name")
    where = f"em {raw_name!r}" if isinstance(raw_name, str) and raw_name.strip() else f"em #{i}"
    checked = _check_table(table, where, EM_KEYS, base, problem)
    name = checked.get("name")
    if name is None and "name" not in table:
        problem(where, "key 'name': missing (the EM's name in the warehouse, e.g. \"em-lon\")")
    elif name is not None:
        first = next(j for j, t in enumerate(tables, 1) if t.get("name") == name)
        if first != i:
            problem(where, f"key 'name': duplicate name (also em #{first})")
    merged = dict(checked_defaults)
    for pair in _EXCLUSIVE:  # the EM's own choice of a pair replaces the one [defaults] made
        if any(k in checked for k in pair):
            for k in pair:
                merged.pop(k, None)
    merged.update(checked)
    for key in ("url", "user"):
        if key not in merged and key not in table and key not in defaults:
            problem(where, f"key {key!r}: missing")
    password_keys = ("password_env", "password_file")
    if not any(k in merged or k in table or k in defaults for k in password_keys):
        problem(where, "no password_env or password_file (here or in [defaults])")
    if "url" not in merged:
        return None
    given = {k: merged[k] for k in CONNECTION_KEYS if k in merged}
    try:
        connection = Connection(**{"user": "", **given, "entry": where}).checked()
    except ConfigError as exc:
        problem(where, str(exc).removeprefix(f"{where}: "))
        return None
    if name is None or "user" not in merged or not any(k in merged for k in password_keys):
        return None
    return EM(name, connection, {k: merged[k] for k in settings.BY_NAME if k in merged})


def _schedule(schedule: Any, problem) -> tuple[str, str]:
    """(cron, timezone) of the [schedule] table, defaults for what it does not give."""
    cron, timezone = DEFAULT_CRON, "UTC"
    if not isinstance(schedule, dict):
        problem("key 'schedule'", "must be a table: [schedule]")
        return cron, timezone
    for key, value in schedule.items():
        if key not in SCHEDULE_KEYS:
            problem(f"[schedule]: key {key!r}", _unknown(key, SCHEDULE_KEYS))
        elif not isinstance(value, str) or not value.strip():
            problem(f"[schedule]: key {key!r}", "must be a non-empty string")
        elif key == "cron" and len(value.split()) != 5:
            problem("[schedule]: key 'cron'", f"{value!r} is not a five-field cron expression")
        elif key == "cron":
            cron = value
        elif not _is_timezone(value):
            problem(
                "[schedule]: key 'timezone'", f"{value!r} is not an IANA time zone such as 'Europe/London'"
            )
        else:
            timezone = value
    return cron, timezone


def _is_timezone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _unknown(key: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(key.replace("-", "_"), list(allowed), n=1)
    return "unknown key" + (
        f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"
    )


def _check_table(table: dict, where: str, allowed: tuple[str, ...], base: Path, problem) -> dict:
    """The valid keys of one [[em]] or [defaults] table, converted; every bad key reported."""
    out: dict = {}
    for key, value in table.items():
        at = f"key {key!r}"
        if key == "password":
            problem(
                where,
                f"{at}: a password is never written in the estate file; use password_env (the name of an "
                "environment variable) or password_file (a file that holds it)",
            )
        elif key not in allowed:
            if key in EM_KEYS:
                problem(where, f"{at}: belongs in each [[em]] table, not in [defaults]")
            else:
                problem(where, f"{at}: {_unknown(key, allowed)}")
        elif key in settings.BY_NAME:
            try:
                out[key] = settings.BY_NAME[key].checked(value, at)
            except ConfigError as exc:
                problem(where, str(exc))
        elif key in ("insecure", "allow_cleartext"):
            if not isinstance(value, bool):
                problem(where, f"{at}: must be true or false")
            else:
                out[key] = value
        elif not isinstance(value, str) or not value.strip():
            problem(where, f"{at}: must be a non-empty string")
        elif key == "password_env" and not _ENV_NAME.match(value):
            # never echo it: it may be a password put in the wrong key
            problem(where, f"{at}: must be the NAME of an environment variable (letters, digits, _)")
        elif key in ("password_file", "ca_bundle"):
            out[key] = (base / Path(value).expanduser()).absolute()
        elif key == "name" and (any(ord(c) < 32 for c in value) or value != value.strip()):
            problem(where, f"{at}: no control characters or surrounding blanks")
        else:
            out[key] = value
    for pair in _EXCLUSIVE:
        if all(k in table for k in pair) and not (pair[1] == "insecure" and table["insecure"] is False):
            problem(where, f"keys {pair[0]!r} and {pair[1]!r}: give one of them, not both")
    return out
