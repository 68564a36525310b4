"""How one run reads EM and writes the warehouse: `Options`, and the tunable settings declared once.

`SETTINGS` lists every run setting a user may give — as a `veeam-etl run` flag, as a key of an
estate file, or in the Dagster definitions — with its type, range, default and help; the CLI and
the estate-file reader are built from it, and `options(values)` turns such values into `Options`.
Imports nothing from the rest of etl but the retry policy.
"""

from __future__ import annotations

import os
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
    """One tunable run setting: `name` is the estate-file key; the flag is `--name-with-dashes`."""

    name: str
    type: type
    low: float | None
    high: float | None
    default: Any
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


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
    ),
    Setting(
        "retry_time",
        float,
        1,
        None,
        _R.total,
        "Seconds one request may spend retrying: long enough to wait out an EM service restart.",
    ),
    Setting(
        "lookback",
        float,
        0,
        None,
        _O.lookback.total_seconds() / 3600,
        "Hours before each watermark an incremental run reads again.",
    ),
    Setting("full_refresh", bool, None, None, False, "Ignore watermarks and read everything EM has."),
    Setting(
        "sweep_hours",
        float,
        0,
        None,
        _O.sweep_hours,
        "Hours between retention sweeps (EM's uid lists of restore points, files, replica points).",
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


def options(values: dict[str, Any], **extra: Any) -> Options:
    """Options from setting values (keys of BY_NAME; None or absent: the default) and `extra`
    Options fields (source, since, …)."""
    given = {k: v for k, v in values.items() if v is not None}
    kwargs: dict[str, Any] = {
        k: given[k]
        for k in (
            "page_size",
            "concurrency",
            "batch_rows",
            "timeout",
            "full_refresh",
            "verify_hours",
            "verify_days",
        )
        if k in given
    }
    if "lookback" in given:
        kwargs["lookback"] = timedelta(hours=given["lookback"])
    kwargs["retry"] = RetryPolicy(
        attempts=given.get("retries", BY_NAME["retries"].default),
        total=given.get("retry_time", BY_NAME["retry_time"].default),
    )
    return Options(**kwargs, **extra)
