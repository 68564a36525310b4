"""veeam-etl: Veeam Backup Enterprise Manager history into a SQL warehouse you own.

The flow, one module per stage: client (HTTP, logon, retries) → crawl (what to ask, pages, parents
by link) → transform (page bytes → rows, in worker processes for long queries) → load (upsert),
joined by pipeline.run(); entities declares the EM types; cli wires flags to it. The simulator
(etl.simulator) is a separate fake Enterprise Manager for the demo and the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def batched(items: Iterable[T], n: int) -> Iterator[list[T]]:
    """Lists of up to `n` items, in order (itertools.batched of Python 3.12)."""
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk
