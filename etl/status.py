"""`veeam-etl status`: recent runs, watermarks and the undocumented values EM sent, read from the
warehouse's bookkeeping tables. A run's query types EM refused to the account (HTTP 403) are shown
under it, each with the EM role that reads it (as the run recorded it from etl.registry).

A source whose runs all failed before loading anything (no succeeded run, no row: a mistyped --url)
is listed apart from the sources that load, and only while it was tried in the last
NEVER_LOADED_SHOWN; older ones are counted in one line (`--json` lists every source).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from . import runs as _runs
from .schema import backup_servers, etl_locks, etl_runs, etl_undocumented_values, etl_watermarks

NEVER_LOADED_SHOWN = timedelta(days=7)


def collect(eng: Engine, limit: int = 10) -> dict:
    with eng.connect() as conn:
        runs = [
            dict(r)
            for r in conn.execute(select(etl_runs).order_by(etl_runs.c.id.desc()).limit(limit)).mappings()
        ]
        marks = [
            dict(r)
            for r in conn.execute(
                select(etl_watermarks, backup_servers.c.name.label("backup_server_name"))
                .outerjoin(backup_servers, backup_servers.c.uid == etl_watermarks.c.backup_server_uid)
                .order_by(
                    etl_watermarks.c.source,
                    backup_servers.c.name,
                    etl_watermarks.c.backup_server_uid,
                    etl_watermarks.c.entity_type,
                )
            ).mappings()
        ]
        locks = [dict(r) for r in conn.execute(select(etl_locks)).mappings()]
        v = etl_undocumented_values.c
        values = [
            dict(r)
            for r in conn.execute(
                select(etl_undocumented_values).order_by(v.entity_type, v.column_name, v.value)
            ).mappings()
        ]
        sources = _sources(conn)
    for r in runs:
        r["counts"] = json.loads(r["counts"]) if r["counts"] else {}
        r["refused"] = _refused(r["refused"])
    for lock in locks:  # a holder killed outright (SIGKILL, OOM) keeps its lock until the next run
        lock["process_gone"] = _runs.holder_gone(lock)
    return {"runs": runs, "watermarks": marks, "locks": locks, "sources": sources, "values": values}


def _sources(conn) -> list[dict]:
    """Per source (EM): its latest run, when it last succeeded, and `never_loaded` (no succeeded run
    and no row inserted by any of its runs), by source name."""
    latest = select(etl_runs.c.source, func.max(etl_runs.c.id).label("id")).group_by(etl_runs.c.source)
    succeeded = (
        select(etl_runs.c.source, func.max(etl_runs.c.finished_at).label("last_success"))
        .where(etl_runs.c.status == "succeeded")
        .group_by(etl_runs.c.source)
    )
    last_success = dict(conn.execute(succeeded).all())
    loaded = dict(
        conn.execute(
            select(etl_runs.c.source, func.sum(etl_runs.c.rows_inserted)).group_by(etl_runs.c.source)
        ).all()
    )
    checked = (
        select(etl_runs.c.source, func.max(etl_runs.c.id).label("id"))
        .where(etl_runs.c.verify_compared.is_not(None))
        .group_by(etl_runs.c.source)
    )
    checks = {
        r["source"]: r
        for r in conn.execute(
            select(etl_runs).where(etl_runs.c.id.in_([row.id for row in conn.execute(checked)]))
        ).mappings()
    }
    ids = [row.id for row in conn.execute(latest)]
    rows = conn.execute(select(etl_runs).where(etl_runs.c.id.in_(ids)).order_by(etl_runs.c.source)).mappings()
    return [
        {
            "source": r["source"],
            "run_id": r["id"],
            "status": r["status"],
            "mode": r["mode"],
            "started_at": r["started_at"],
            "finished_at": r["finished_at"],
            "rows_inserted": r["rows_inserted"],
            "rows_updated": r["rows_updated"],
            "requests": r["requests"],
            "error": r["error"],
            "refused": _refused(r["refused"]),
            "last_success": last_success.get(r["source"]),
            "never_loaded": r["source"] not in last_success and not loaded.get(r["source"]),
            "last_check": _check(checks.get(r["source"])),
        }
        for r in rows
    ]


def _refused(text: str | None) -> list[dict]:
    """The run's refused types: [{"type": …, "role": …}] (empty when EM refused nothing)."""
    return json.loads(text) if text else []


def _refused_line(refused: list[dict]) -> str:
    types = ", ".join(f"{r['type']} (needs the EM role {r['role']})" for r in refused)
    return f"        refused by EM (HTTP 403), skipped: {types}"


def _check(run) -> dict | None:
    """The completeness check a run made (etl.completeness): what it compared, found and reloaded."""
    if run is None:
        return None
    return {
        "run_id": run["id"],
        "status": run["status"],
        "started_at": run["started_at"],
        "compared": run["verify_compared"],
        "differing": run["verify_differing"],
        "reloaded": run["verify_reloaded"],
        "requests": run["verify_requests"],
    }


def _t(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _source_line(s: dict) -> str:
    return (
        f"  {s['source']:<32}{s['run_id']:>6} {s['status']:<10}{_t(s['finished_at']):<22}"
        f"{_t(s['last_success']):<22}{s['rows_inserted']:>9}{s['rows_updated']:>9}{s['requests']:>9}"
    )


def render(data: dict, now: datetime | None = None) -> str:
    """The text of `veeam-etl status`; `now` (default: the clock) decides which never-loaded sources
    are still listed (NEVER_LOADED_SHOWN)."""
    now = now or datetime.now(UTC)
    sources = data.get("sources", [])
    loading = [s for s in sources if not s.get("never_loaded")]
    never = [s for s in sources if s.get("never_loaded")]
    recent = [s for s in never if (s["started_at"] or now) >= now - NEVER_LOADED_SHOWN]
    lines = [
        "latest run per source:",
        f"  {'source':<32}{'run':>6} {'status':<10}{'finished':<22}{'last success':<22}"
        f"{'inserted':>9}{'updated':>9}{'requests':>9}",
    ]
    for s in loading:
        lines.append(_source_line(s))
        if s["error"]:
            lines.append(f"        error: {s['error'][:200]}")
        if s["refused"]:
            lines.append(_refused_line(s["refused"]))
        check = s.get("last_check")
        lines.append(
            "        completeness: never checked"
            if check is None
            else f"        completeness checked by run {check['run_id']} ({check['status']}) at "
            f"{_t(check['started_at'])}: {check['compared']} counts compared, {check['differing']} "
            f"differed, {check['reloaded']} rows reloaded, {check['requests']} requests"
        )
    if not loading:
        lines.append("  (none)")
    if never:
        days = NEVER_LOADED_SHOWN.days
        lines.append(
            f"sources that never loaded anything (no succeeded run, no row), tried in the last {days} days:"
        )
        for s in recent:
            lines.append(_source_line(s))
            if s["error"]:
                lines.append(f"        error: {s['error'][:200]}")
        if len(never) > len(recent):
            lines.append(
                f"  and {len(never) - len(recent)} more not tried for {days} days (a mistyped --url?): "
                "`veeam-etl status --json` lists them"
            )
    lines += [
        "recent runs:",
        f"  {'id':>5} {'status':<10}{'mode':<12}{'started':<22}{'finished':<22}"
        f"{'inserted':>9}{'updated':>9}{'requests':>9}  source",
    ]
    for r in data["runs"]:
        lines.append(
            f"  {r['id']:>5} {r['status']:<10}{r['mode']:<12}{_t(r['started_at']):<22}"
            f"{_t(r['finished_at']):<22}{r['rows_inserted']:>9}{r['rows_updated']:>9}{r['requests']:>9}"
            f"  {r['source']}"
        )
        if r["error"]:
            lines.append(f"        error: {r['error'][:200]}")
        if r["refused"]:
            lines.append(_refused_line(r["refused"]))
        if r.get("verify_compared") is not None:
            lines.append(
                f"        completeness: {r['verify_compared']} counts compared, {r['verify_differing']} "
                f"differed, {r['verify_reloaded']} rows reloaded ({r['verify_requests']} requests)"
            )
    if not data["runs"]:
        lines.append("  (none)")
    lines.append("watermarks (newest creation time committed, per source, backup server and type):")
    source = None
    for m in data["watermarks"]:
        if m["source"] != source:
            source = m["source"]
            lines.append(f"  {source}")
        server = m.get("backup_server_name") or m["backup_server_uid"]
        lines.append(
            f"    {server[:38]:<40}{m['entity_type']:<20}{_t(m['watermark_utc'])}  (run {m['run_id']})"
        )
    if not data["watermarks"]:
        lines.append("  (none)")
    lines.append(
        "values EM sent that its documentation does not list (stored as sent; warned about once, when "
        "first seen):"
    )
    for v in data.get("values", []):
        lines.append(
            f"  {v['entity_type'] + '.' + v['column_name']:<32}{v['value']!r:<28}first seen "
            f"{_t(v['first_seen_at'])} (run {v['run_id']}, {v['source']})"
        )
    if not data.get("values"):
        lines.append("  (none)")
    for lock in data["locks"]:
        lines.append(
            f"lock held: {lock['source']} by pid {lock['pid']} on {lock['host']} "
            f"(run {lock['run_id']}, heartbeat {_t(lock['heartbeat_at'])})"
            + (
                ": that process is gone (killed?); the next run takes the lock over and records "
                f"run {lock['run_id']} failed"
                if lock.get("process_gone")
                else ""
            )
        )
    return "\n".join(lines)
