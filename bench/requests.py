"""Requests of a full load and of a no-change incremental run of the benchmark estate, by what they ask.

    python bench/requests.py                 # the estate of bench/run.py (≈100k task sessions a side)
    python bench/requests.py --tasks 20000   # a smaller one

Request counts are deterministic (the simulator's clock is fixed and the estate seeded), so they are
measured here without the timed benchmark: the simulator in its own process (bench/serve.py, as
bench/run.py starts it), one full load and one incremental run right after it into a throwaway
SQLite warehouse, every request classified by what it asks for (`classify`). Prints Markdown.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import Sim  # noqa: E402 - bench/run.py beside this file

from etl import client, db, pipeline, registry  # noqa: E402

SEEN: Counter = Counter()
_lock = threading.Lock()
BY_PARENT = {f"{t.by_parent.filter}==" for t in registry.TYPES.values() if t.by_parent}


def classify(method: str, url: str) -> str:
    """What one request asks for."""
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if "type" not in q:
        return f"{method} {parts.path.split('/api', 1)[-1].strip('/').split('/')[0] or '(root)'}"
    flt, refs = q.get("filter", ""), q.get("format") == "References"
    entity_type = registry.TYPES.get(q["type"])
    if q.get("pageSize") == "1":  # References; Entities (oldest first) before the check's window
        return "completeness check: counts"
    if refs and flt.startswith("UID=="):
        return "window self-check: rows looked up by UID"
    if refs and flt.startswith("JobUid=="):
        return "jobs of backups (JobUid==)"
    if refs:
        inventory = entity_type is not None and entity_type.time_filter is None
        return "inventory cross-check: atomic uid list" if inventory else "retention sweep: uid lists"
    if flt.startswith("UID=="):
        return "rows looked up by UID (inventory, sweep, stragglers)"
    if any(flt.startswith(p) for p in BY_PARENT):
        return "children by parent (and tasks of sessions read again)"
    window = entity_type.time_filter if entity_type is not None else None
    if window:
        if "BackupServerUid" in flt and f'{window}<"' in flt:
            return "completeness check: buckets read again"
        if f"{window}<=" in flt or ");(" in flt or flt.startswith(f"{window}>="):
            return "seam queries"
    return "query pages"


def instrument() -> None:
    send = client.EMClient._send

    def counted(self, method, url, *args, **kwargs):
        with _lock:
            SEEN[classify(method, url)] += 1
        return send(self, method, url, *args, **kwargs)

    client.EMClient._send = counted


def load(eng, url: str, page_size: int, concurrency: int) -> tuple[int, Counter]:
    SEEN.clear()
    summary = pipeline.run(
        eng,
        url,
        "demo",
        "demo",
        options=pipeline.Options(page_size=page_size, concurrency=concurrency, source="bench"),
    )
    return summary.requests, Counter(SEEN)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--page-size", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=4)
    a = ap.parse_args()
    instrument()
    sim = Sim(a.tasks, 0.0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            eng = db.engine(f"sqlite:///{tmp}/bench.db")
            db.migrate(eng)
            full = load(eng, sim.url, a.page_size, a.concurrency)
            again = load(eng, sim.url, a.page_size, a.concurrency)
            eng.dispose()
    finally:
        sim.close()
    print(f"# Requests ({a.tasks} task sessions a side, page size {a.page_size})\n")
    print("| what | full load | no-change incremental |\n|---|---:|---:|")
    for kind in sorted(set(full[1]) | set(again[1])):
        print(f"| {kind} | {full[1].get(kind, 0)} | {again[1].get(kind, 0)} |")
    print(f"| **total** | **{full[0]}** | **{again[0]}** |")


if __name__ == "__main__":
    main()
