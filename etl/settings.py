"""How one run reads EM and writes the warehouse: `Options`, and the tunable settings declared once.

`SETTINGS` lists every run setting a user may give — as a `veeam-etl run` flag, as a key of an
estate file, or in the Dagster definitions — with its type, range, default, help and the `Options`
field it sets; the CLI and the estate-file reader are built from it, and `options(values)` builds
`Options` from every entry. Imports nothing from the rest of etl but the retry policy.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

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
    # the completeness check (etl.verify: EM's counts against the warehouse's, what differs reloaded):
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
