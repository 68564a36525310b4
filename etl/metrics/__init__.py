"""`veeam-etl metrics`: the warehouse as Prometheus metrics (text exposition, through prometheus_client).

families.py declares every family; collection.py reads the reporting views and etl_runs into them on every
collection; serve.py writes one collection to a file (--out) or serves GET /metrics (--listen). The
alert rules on these families are in deploy/prometheus/, the setups in docs/alerting.md.
"""

from __future__ import annotations

from .collection import WarehouseCollector, collect, exposition, registry
from .families import BY_NAME, FAMILIES, MESSAGE_CHARS, Family
from .serve import app, listen_address, server, write

__all__ = [
    "BY_NAME",
    "FAMILIES",
    "MESSAGE_CHARS",
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
