"""veeam-etl: Veeam Backup Enterprise Manager history into a SQL warehouse you own. The flow: registry
(the EM types) → plan → crawl (the Fetcher: client, one paging loop) → transform → store/load, joined
by pipeline.run(); cli wires flags to it. README's Development section walks it; the simulator
(etl.simulator) is a separate fake Enterprise Manager."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def chunks(items: Iterable[T], n: int) -> Iterator[list[T]]:
    """Lists of up to `n` items, in order (itertools.batched of Python 3.12, as lists)."""
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk
