"""What one run reads, worked out from plain values: its mode, where each type is read from per
backup server and the queries (windows) that read it, the new parents whose children no window
reads, the sessions to read again, the jobs to ask first, and whether the sweep and the completeness
check are due. Pure: no I/O, no engine, no client; imports only declarations and filters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from . import chunks, filters
from .registry import EntityType
from .settings import Options

if TYPE_CHECKING:
    from .runs import Marks

FILTER_CHARS = 3000  # characters of filter per query: with the rest, well under common 8 KB URL limits

Starts = dict[str, datetime | None]  # backup server uid -> creation instant to read from (None: all)
Job = tuple[str, str | None, bool]  # a candidate job: (uid, backup server, owns a row already)


def mode(opts: Options, marks: Marks) -> str:
    """repair (`veeam-etl verify --repair`), full (the first run on an empty warehouse,
    --full-refresh), since (--since) or incremental."""
    if opts.repair:
        return "repair"
    if opts.full_refresh or (not marks and opts.since is None):
        return "full"
    return "since" if opts.since is not None else "incremental"


def starts(
    opts: Options, mode: str, marks: Marks, entity_type: EntityType, servers: set[str]
) -> Starts | datetime | None:
    """Where an incremental type is read from: None (everything: a full run), one instant (--since),
    or per backup server its watermark minus the lookback, a server without one (new, or new to
    this type) read from the beginning. `servers`: those EM lists now, and those with watermarks."""
    if mode == "full":
        return None
    if mode == "since":
        return opts.since
    own = marks.get(entity_type.name, {})
    return {s: own[s] - opts.lookback if s in own else None for s in servers | set(own)}


def one_start(begin: Starts) -> datetime | None:
    """One start for every backup server, for an account EM refuses the backup server list (a VM
    Restore Operator: em-api.md, "Roles"), where windows per server would leave out the servers the
    warehouse has not seen: the earliest start, so that no known server reads less (None, read
    whole, when a server has none). A server EM adds later is read from there, not whole."""
    if not begin or any(start is None for start in begin.values()):
        return None
    return min(start for start in begin.values() if start is not None)


@dataclass(frozen=True)
class Window:
    """One query of an incremental read: its filter (None: everything), and where each backup server
    it names is read from (a server read whole: None), or one instant for all servers; a query by
    parent has neither a filter of that kind nor starts (`starts` None with a filter)."""

    filter: str | None
    starts: Starts | datetime | None

    @property
    def overlaps(self) -> bool:
        """The window starts after the beginning for some server: it holds rows already loaded."""
        if isinstance(self.starts, dict):
            return any(start is not None for start in self.starts.values())
        return self.starts is not None

    @property
    def moves_watermarks(self) -> bool:
        """A type read whole, or from its watermarks: what it finds moves them. What a query by
        parent, UID or bucket finds says nothing about the rows created before it that were not
        asked for."""
        return self.filter is None or self.starts is not None


def windows(entity_type: EntityType, begin: Starts | datetime | None) -> list[Window]:
    """The queries of an incremental read of `entity_type`.

    `begin` None: everything, one query without a filter. A datetime: one window for all backup
    servers. A dict: one window per backup server, `(BackupServerUid=="a";<window from ta>),…` (`;`
    binds tighter than `,`), a server without a start read whole; as many servers per query as fit
    in FILTER_CHARS. EM collects each backup server on its own schedule, so a server that was
    unreachable delivers its sessions hours late with their original creation times (em-api.md,
    "Collection lag per backup server"): one window per server loses none of them.
    """
    if entity_type.time_filter is None or begin is None or (isinstance(begin, dict) and not begin):
        return [Window(None, None)]
    if isinstance(begin, datetime):
        return [Window(filters.since(entity_type, begin), begin)]
    out: list[Window] = []
    current, names = "", dict[str, datetime | None]()
    for server, start in sorted(begin.items()):
        term = (
            filters.server(server)
            if start is None
            else f"({filters.server(server)};{filters.since(entity_type, start)})"
        )
        if current and len(current) + 1 + len(term) > FILTER_CHARS:
            out.append(Window(current, names))
            current, names = "", dict[str, datetime | None]()
        current = f"{current},{term}" if current else term
        names[server] = start
    out.append(Window(current, names))
    return out


def parents_outside_windows(
    new: list[tuple[str, str | None, datetime | None]], begin: Starts | datetime | None
) -> list[str]:
    """Of the parents new to the warehouse in this run, (uid, backup server, creation instant or
    None), those whose children the windows `begin` describes do not read: an imported backup
    brings restore points and files dated weeks before the server's watermark (em-api.md, "EM
    changes while it is read"). Not on a backup server read whole (a full load, a new server: no
    request), and, for parents with a creation time, only those older than the window on their
    server (the children of a younger one are in the window). Sorted uids."""
    if begin is None:
        return []
    wanted = []
    for uid, server, at in new:
        if isinstance(begin, dict):
            if server is not None and server in begin and begin[server] is None:
                continue  # this run reads the type whole on that server
            start = begin.get(server) if server is not None else None
        else:
            start = begin
        if at is not None and start is not None and at >= start:
            continue
        wanted.append(uid)
    return sorted(wanted)


def sessions_to_reread(
    sessions: list[EntityType], unfinished: dict[str, list[str]], named_by_tasks: dict[str, set[str]]
) -> dict[str, list[str]]:
    """Per session type, what a run reads again: `unfinished` are the sessions the warehouse last saw
    unfinished that this run's windows did not report unfinished (collected late, or removed),
    `named_by_tasks` the job sessions such task sessions name. Job sessions are read by UID; task
    sessions by their job session (their `by_parent`): those of the job sessions read again, which
    may have got tasks since, and those the unfinished tasks name."""
    out = {t.name: list(unfinished.get(t.name, [])) for t in sessions}
    for t in sessions:
        if t.by_parent is not None:
            out[t.name] = sorted(set(out.get(str(t.parent_type), [])) | named_by_tasks.get(t.name, set()))
    return out


def reread_filters(entity_type: EntityType, uids: list[str]) -> Iterator[str]:
    """The queries of `sessions_to_reread`'s uids of one type: by UID, or by job session."""
    if entity_type.by_parent is None:
        return filters.one_of("UID", uids)
    return filters.children_of(entity_type, uids)


def first_jobs(candidates: list[Job]) -> list[list[str]]:
    """The jobs to ask first for their backups (or replicas): those that own no row yet, one a query
    (a new backup most often belongs to a new job)."""
    return [[job] for job, _, owns in candidates if not owns]


def job_groups(candidates: list[Job], servers: set[str | None]) -> list[list[str]]:
    """The other jobs of `servers` (those of the rows still without a job), UIDS_PER_QUERY a
    query, a group per backup server."""
    owning: dict[str | None, list[str]] = {}
    for job, server, owns in candidates:
        if owns and server in servers:
            owning.setdefault(server, []).append(job)
    return [group for jobs in owning.values() for group in chunks(jobs, filters.UIDS_PER_QUERY)]


def sweep_due(opts: Options, mode: str, last: datetime | None, now: datetime, before_check: bool) -> bool:
    """Whether this run sweeps with EM's uid lists: when forced (`opts.sweep`), else before a
    completeness check, in a full load or repair, or when the last sweep (`last`, None: never) is
    `sweep_hours` old."""
    if opts.sweep is not None:
        return opts.sweep
    return (
        before_check
        or mode in ("full", "repair")
        or last is None
        or now - last >= timedelta(hours=opts.sweep_hours)
    )


def sweep_from(entity_type: EntityType, mode: str, fresh: bool, placeholders: bool, due: bool) -> str | None:
    """What the retention sweep compares a swept type's rows with: "run" (inventory: what this run
    listed, no request), "em" (EM's uid lists: when due, or for a table this run filled from empty
    that holds placeholders, rows known only from a link), or None (no sweep of it in this run: a
    repair reads no inventory; a table filled from empty holds only what EM listed)."""
    if entity_type.time_filter is None:
        return None if mode == "repair" else "run"
    if fresh and not placeholders:
        return None
    return "em" if due or fresh else None


def verify_due(opts: Options, mode: str, last: datetime | None, now: datetime) -> bool:
    """Whether this run checks completeness: when forced (`opts.verify`), in every full load and
    repair, else when the last check (`last`, None: never) is `verify_hours` old (0: every run)."""
    if opts.verify is not None:
        return opts.verify
    if mode in ("full", "repair"):
        return True
    return last is None or now - last >= timedelta(hours=opts.verify_hours)
