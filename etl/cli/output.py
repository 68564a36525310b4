"""What `run`, `verify --repair` and `demo` print of a run (a pipeline.Summary): the summary
table (`summary`) and, on a terminal, the progress line while it loads (`Progress`, drawn below the
log lines by etl.logs). Text only: the CLI echoes it.
"""

from __future__ import annotations

import sys

from .. import logs, pipeline, registry


def table_of(type_name: str) -> str | None:
    """The warehouse table of an EM entity type (None for a type the loader does not know)."""
    entry = registry.TYPES.get(type_name)
    return entry.table if entry else None


class Progress:
    """One self-overwriting status line on a terminal (logs.STATUS: log lines are written above it,
    never over it); silent when stderr is not a TTY. It shows the rows written to the table of the
    type being loaded and, labelled as such, the total of all tables. A pipeline.run `progress`."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()

    def line(self, summary: pipeline.Summary, type_name: str) -> str:
        def written(counts: dict[str, int]) -> int:
            return counts["inserted"] + counts["updated"]

        counts = summary.tables.get(table_of(type_name) or "")
        total = sum(written(c) for c in summary.tables.values())
        mine = f"{written(counts):>9} rows written" if counts is not None else " " * 22
        return f"  {type_name:<20}{mine}, {total:>9} in all tables, {summary.requests:>6} requests"

    def __call__(self, summary: pipeline.Summary, type_name: str) -> None:
        if self.enabled:
            logs.STATUS.show(self.line(summary, type_name))

    def done(self) -> None:
        logs.STATUS.end()


def summary(s: pipeline.Summary) -> str:
    """The run summary: outcome, rows inserted and updated per table, parents and quarantine, what EM
    refused, what was worked out, retention, the completeness check, requests and retries."""
    lines = [
        f"run {s.run_id} {s.status}: {s.mode} load of {s.source} in {s.duration_s:.1f} s",
        f"  {'table':<24}{'inserted':>10}{'updated':>10}",
    ]
    for table, counts in s.tables.items():
        lines.append(f"  {table:<24}{counts['inserted']:>10}{counts['updated']:>10}")
    lines.append(
        f"  parents fetched by link: {s.parents_fetched}, recorded from links: "
        f"{s.parents_from_links}, quarantined: {s.quarantined}, new undocumented values: {s.new_values}"
    )
    if s.refused:
        refused = ", ".join(f"{t} (needs the EM role {role})" for t, role in s.refused.items())
        lines.append(f"  refused by EM (HTTP 403), skipped: {refused}")
    filled = ", ".join(f"{column} {n}" for column, n in s.worked_out.items() if n)
    if filled:
        lines.append(f"  worked out (no link in EM's entities): {filled}")
    deleted = ", ".join(f"{table} {c['deleted']}" for table, c in s.swept.items() if c["deleted"])
    back = ", ".join(f"{table} {c['back']}" for table, c in s.swept.items() if c["back"])
    if deleted or back:
        lines.append(f"  retention: no longer in EM: {deleted or 'none'}; back in EM: {back or 'none'}")
    v = s.verification
    if v is not None:
        lines.append(
            f"  completeness check: {len(v.counts)} counts compared, {len(v.differences)} differed, "
            f"{v.reloaded} rows reloaded"
        )
    lines.append(
        f"  requests: {s.requests} ({s.sweep_requests} for the retention sweep"
        + (f", {v.requests} for the completeness check" if v is not None else "")
        + f"), retries: {s.retries}, links to other origins refused: {s.foreign_links}"
    )
    return "\n".join(lines)
