"""`veeam-etl metrics`: the warehouse as Prometheus metrics. families.py declares every family,
collection.py reads the reporting views and etl_runs into them on every collection, serve.py writes one
to a file (--out) or serves GET /metrics (--listen). Alert rules: deploy/prometheus/, docs/alerting.md.
"""

from __future__ import annotations

from .collection import PG_SETTINGS, WarehouseCollector, collect, exposition, registry
from .families import BY_NAME, FAMILIES, MESSAGE_CHARS, Family
from .serve import app, listen_address, server, write

__all__ = [
    "BY_NAME",
    "FAMILIES",
    "MESSAGE_CHARS",
    "PG_SETTINGS",
    "Family",
    "WarehouseCollector",
    "app",
    "collect",
    "exposition",
    "listen_address",
    "registry",
    "server",
    "write",
]
