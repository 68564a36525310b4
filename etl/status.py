"""`veeam-etl status`: recent runs and watermarks, read from the warehouse's bookkeeping tables."""

from __future__ import annotations

import json

from sqlalchemy import Engine, func, select

from .schema import etl_locks, etl_runs, etl_watermarks


def collect(eng: Engine, limit: int = 10) -> dict:
    with eng.connect() as conn:
        runs = [
            dict(r)
            for r in conn.execute(select(etl_runs).order_by(etl_runs.c.id.desc()).limit(limit)).mappings()
        ]
        marks = [
            dict(r)
            for r in conn.execute(
                select(etl_watermarks).order_by(etl_watermarks.c.source, etl_watermarks.c.entity_type)
            ).mappings()
        ]
        locks = [dict(r) for r in conn.execute(select(etl_locks)).mappings()]
        sources = _sources(conn)
    for r in runs:
        r["counts"] = json.loads(r["counts"]) if r["counts"] else {}
    return {"runs": runs, "watermarks": marks, "locks": locks, "sources": sources}


def _sources(conn) -> list[dict]:
    """Per source (EM): its latest run and when it last succeeded, by source name."""
    latest = select(etl_runs.c.source, func.max(etl_runs.c.id).label("id")).group_by(etl_runs.c.source)
    succeeded = (
        select(etl_runs.c.source, func.max(etl_runs.c.finished_at).label("last_success"))
        .where(etl_runs.c.status == "succeeded")
        .group_by(etl_runs.c.source)
    )
    last_success = dict(conn.execute(succeeded).all())
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
            "last_success": last_success.get(r["source"]),
            "last_check": _check(checks.get(r["source"])),
        }
        for r in rows
    ]


def _check(run) -> dict | None:
    """The completeness check a run made (etl.verify): what it compared, found and reloaded."""
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


def render(data: dict) -> str:
    lines = [
        "latest run per source:",
        f"  {'source':<32}{'run':>6} {'status':<10}{'finished':<22}{'last success':<22}"
        f"{'inserted':>9}{'updated':>9}{'requests':>9}",
    ]
    for s in data.get("sources", []):
        lines.append(
            f"  {s['source']:<32}{s['run_id']:>6} {s['status']:<10}{_t(s['finished_at']):<22}"
            f"{_t(s['last_success']):<22}{s['rows_inserted']:>9}{s['rows_updated']:>9}{s['requests']:>9}"
        )
        if s["error"]:
            lines.append(f"        error: {s['error'][:200]}")
        check = s.get("last_check")
        lines.append(
            "        completeness: never checked"
            if check is None
            else f"        completeness checked by run {check['run_id']} ({check['status']}) at "
            f"{_t(check['started_at'])}: {check['compared']} counts compared, {check['differing']} "
            f"differed, {check['reloaded']} rows reloaded, {check['requests']} requests"
        )
    if not data.get("sources"):
        lines.append("  (none)")
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
        if r.get("verify_compared") is not None:
            lines.append(
                f"        completeness: {r['verify_compared']} counts compared, {r['verify_differing']} "
                f"differed, {r['verify_reloaded']} rows reloaded ({r['verify_requests']} requests)"
            )
    if not data["runs"]:
        lines.append("  (none)")
    lines.append("watermarks (newest creation time committed, per source and type):")
    for m in data["watermarks"]:
        lines.append(f"  {m['source']}  {m['entity_type']:<20}{_t(m['watermark_utc'])}  (run {m['run_id']})")
    if not data["watermarks"]:
        lines.append("  (none)")
    for lock in data["locks"]:
        lines.append(
            f"lock held: {lock['source']} by pid {lock['pid']} on {lock['host']} "
            f"(run {lock['run_id']}, heartbeat {_t(lock['heartbeat_at'])})"
        )
    return "\n".join(lines)
