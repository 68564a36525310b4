"""`veeam-etl status`: recent runs and watermarks, read from the warehouse's bookkeeping tables."""

from __future__ import annotations

import json

from sqlalchemy import Engine, select

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
    for r in runs:
        r["counts"] = json.loads(r["counts"]) if r["counts"] else {}
    return {"runs": runs, "watermarks": marks, "locks": locks}


def _t(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def render(data: dict) -> str:
    lines = [
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
