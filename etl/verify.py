"""`veeam-etl verify`: EM's counts against the warehouse's over the last days, read only
(etl.completeness), or with `repair` a run that sweeps, checks and reloads what differs
(etl.pipeline); and the comparison as a terminal table. Sits above the pipeline, like the CLI.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from . import db, pipeline, registry, schema
from .completeness import Verification, compare
from .crawl import Fetcher
from .settings import Options


def _until(eng: Engine, source: str, now: datetime) -> datetime:
    """Where the last succeeded run of `source` started (now when there is none), to the second."""
    runs = schema.etl_runs
    with eng.connect() as conn:
        started = conn.scalar(
            select(func.max(runs.c.started_at)).where(runs.c.source == source, runs.c.status == "succeeded")
        )
    if isinstance(started, str):  # SQLite aggregates lose the column type
        started = datetime.fromisoformat(started)
    at = schema.UTCDateTime().process_result_value(started, None) if started else now
    return at.replace(microsecond=0)


def verify(
    eng: Engine,
    url: str,
    user: str,
    password: str,
    *,
    verify: bool | str = True,
    days: float = 7.0,
    repair: bool = False,
    options: Options | None = None,
    transport=None,
) -> Verification:
    """`veeam-etl verify`: compare EM's counts with the warehouse's over the last `days` up to where
    the last succeeded run started (read only); with `repair`, a run that sweeps, checks and
    reloads what differs (pipeline.run, mode `repair`), its summary in `repaired`. Raises a
    VeeamEtlError (SourceError, LockHeld from the repair run, ConfigError)."""
    opts = options or Options()
    if repair:
        summary = pipeline.run(
            eng,
            url,
            user,
            password,
            verify=verify,
            options=replace(opts, repair=True, verify=True, verify_days=days),
            transport=transport,
        )
        assert summary.verification is not None
        summary.verification.repaired = summary
        return summary.verification
    source = opts.source or pipeline.source_name(url)
    db.ensure_current(eng)
    until = _until(eng, source, schema.now_utc())
    fetcher = Fetcher(url, user, password, verify=verify, options=opts, transport=transport)
    with fetcher:
        servers = {uid for chunk in fetcher.uids(registry.BACKUP_SERVER) for uid in chunk}
        result = compare(eng, fetcher, source, until - timedelta(days=days), until, servers)
    result.requests = fetcher.requests
    return result


def render(result: Verification) -> str:
    """The comparison as a terminal table: every bucket that differs, then one line of totals."""
    lines = [
        f"verify {result.source}: sessions and points created {result.since:%Y-%m-%d %H:%M}Z .. "
        f"{result.until:%Y-%m-%d %H:%M}Z (restore points and files: any time), {len(result.counts)} "
        f"counts compared, {result.requests} requests"
    ]
    differing = result.differences
    if differing:
        lines.append(
            f"  {'type':<20}{'backup server':<28}{'created / backups':<36}{'EM':>9}{'warehouse':>11}{'missing':>9}"
        )
        for c in differing:
            server = (result.server_names.get(c.server_uid or "") or c.server_uid or "(all)")[:26]
            lines.append(
                f"  {c.type_name:<20}{server:<28}{c.bucket.label[:34]:<36}{c.em:>9}{c.warehouse:>11}"
                f"{c.em - c.warehouse:>9}"
            )
    lines.append(
        f"  {len(differing)} windows differ"
        + (f"; {result.reloaded} rows reloaded" if result.repaired is not None else "")
        + ("; run again with --repair to reload them" if differing and result.repaired is None else "")
    )
    return "\n".join(lines)
