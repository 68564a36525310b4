"""Command line: click wiring only. Each command reads flags and environment, makes one core call,
prints, and exits with its code; `group` is the only place errors are caught and mapped to exit
codes. Commands by what they work on: `em` (run, verify, check), `warehouse`, `simulated`.
"""

from __future__ import annotations

from . import em, simulated, warehouse  # each registers its commands on `main`
from .em import check, run, verify
from .group import main
from .simulated import demo, simulate
from .warehouse import metrics, migrate, report, status

__all__ = [
    "check",
    "demo",
    "em",
    "main",
    "metrics",
    "migrate",
    "report",
    "run",
    "simulate",
    "simulated",
    "status",
    "verify",
    "warehouse",
]
