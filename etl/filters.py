"""EM's query filter dialect (em-api.md, "Query service"): the text of `filter=` for windows, seams,
UID lists, parents and buckets. Pure (strings in, strings out, no I/O); reads entity types through
their declared attributes and imports nothing of etl but the chunking helper."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from . import chunks

if TYPE_CHECKING:
    from .registry import EntityType

UIDS_PER_QUERY = 40  # OR-ed UID terms per query: keeps the URL well under common 8 KB limits
SECOND = timedelta(seconds=1)

Seam = tuple[datetime | None, datetime | None]  # (low, high) creation instants; None: open


def literal(value: str) -> str:
    """A filter value as EM's grammar wants it: quoted (a quote inside doubled) when it holds
    anything but letters, digits, `.`, `_` and `-`; enum values and numbers stay bare, as every
    documented example writes them (em-api.md, "Query service")."""
    if value and all(c.isalnum() or c in "._-" for c in value):
        return value
    return '"' + value.replace('"', '""') + '"'


def instant(at: datetime) -> str:
    """A UTC instant as filters take it: to the second, quoted."""
    return f'"{at:%Y-%m-%dT%H:%M:%SZ}"'


def floor(at: datetime) -> datetime:
    """`at` rounded down to the second (EM's instants carry up to 7 fractional digits)."""
    return at.replace(microsecond=0)


def both(a: str | None, b: str | None) -> str | None:
    """Both filters (`;` is AND; each parenthesised, `,` inside binding looser)."""
    if a is None or b is None:
        return a if b is None else b
    return f"({a});({b})"


def all_of(*filters: str | None) -> str | None:
    """Every filter given (AND), None when none is."""
    out: str | None = None
    for f in filters:
        out = both(out, f)
    return out


def seam_term(field: str, low: datetime | None, high: datetime | None) -> str | None:
    """`field>="low";field<="high"` with low rounded down and high up to the second (None: open)."""
    parts = []
    if low is not None:
        parts.append(f"{field}>={instant(floor(low))}")
    if high is not None:
        parts.append(f"{field}<={instant(floor(high) + SECOND)}")
    return ";".join(parts) or None


def seams(field: str, wanted: list[Seam]) -> str | None:
    """The seams OR-ed (`;` binds tighter than `,`), those that overlap once rounded merged; None
    when one of them is the whole time line."""
    merged: list[Seam] = []
    for low, high in sorted(
        ((floor(lo) if lo else None, floor(hi) + SECOND if hi else None) for lo, hi in wanted),
        key=lambda s: (s[0] is not None, s[0] or datetime.min),
    ):
        if merged and (merged[-1][1] is None or (low is not None and low <= merged[-1][1])):
            prev_low, prev_high = merged[-1]
            merged[-1] = (prev_low, None if prev_high is None or high is None else max(prev_high, high))
            continue
        merged.append((low, high))
    terms = []
    for low, high in merged:
        if low is None and high is None:
            return None
        parts = [f"{field}>={instant(low)}"] if low is not None else []
        parts += [f"{field}<={instant(high)}"] if high is not None else []
        terms.append(";".join(parts))
    return ",".join(terms)


def since(entity_type: EntityType, at: datetime) -> str:
    """Entities created at or after `at`; for sessions also older ones that ended at or after it or
    are not finished (any State but the final one)."""
    when = instant(at)
    if entity_type.final_state is None:
        return f"{entity_type.time_filter}>={when}"
    return f"({entity_type.time_filter}>={when},EndTime>={when},State!={literal(entity_type.final_state)})"


def created(entity_type: EntityType, start: datetime | None, end: datetime | None) -> str | None:
    """Entities of `entity_type` created in [start, end) (whole seconds; None: open)."""
    parts = [f"{entity_type.time_filter}>={instant(start)}"] if start is not None else []
    parts += [f"{entity_type.time_filter}<{instant(end)}"] if end is not None else []
    return ";".join(parts) or None


def server(uid: str) -> str:
    """The entities of one backup server."""
    return f"BackupServerUid=={literal(uid)}"


def one_of(name: str, values: Iterable[str]) -> Iterator[str]:
    """`name=="urn:…",name=="urn:…",…` filters (`,` is OR), UIDS_PER_QUERY terms each."""
    for chunk in chunks(values, UIDS_PER_QUERY):
        yield ",".join(f"{name}=={literal(uid)}" for uid in chunk)


def children_of(entity_type: EntityType, parent_uids: Iterable[str]) -> Iterator[str]:
    """Filters that list the entities of `entity_type` whose parent is one of `parent_uids` (the
    type's `by_parent` declaration), UIDS_PER_QUERY parents a query."""
    assert entity_type.by_parent is not None
    return one_of(entity_type.by_parent.filter, parent_uids)
