"""One measured load in a fresh process, so that its peak RSS is its own.

    python bench/child.py '{"db": "sqlite:///x.db", "url": "http://127.0.0.1:P/api", "page_size": 500,
                            "concurrency": 4, "incremental": true, "profile": false}'

Migrates the warehouse (timed apart), runs the full load, then (optionally) a no-change incremental
run, and prints one JSON line. Stage times come from thin timers wrapped around etl functions from
outside (a few clock reads per page, not per row); with "profile" the full load runs under cProfile
(main thread only) and the top 10 functions by own time are returned as text. Optional keys
"worker_processes", "ahead" and "batch_rows" override those pipeline options (for experiments).
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import re
import resource
import sys
import threading
import time
from collections import Counter, defaultdict
from urllib.parse import parse_qs, urlsplit

from etl import client, crawl, db, parse, pipeline, runs, transform
from etl.load import Loader

STAGES: dict[str, float] = defaultdict(float)  # wall seconds per stage
CPU: dict[str, float] = defaultdict(float)  # CPU seconds of the thread that ran the stage
REQUESTS: Counter = Counter()  # logical requests by what they ask for
WORKER_RSS: list[float] = []  # peak RSS of each worker process of the last load
WORKER_CPU: list[float] = []  # CPU seconds of each worker process of the last load
_lock = threading.Lock()


def _timed(owner, attr: str, stage: str) -> None:
    fn = getattr(owner, attr, None)
    if fn is None:  # etl/ changed under us: that stage is simply not reported
        return

    def wrapper(*args, **kwargs):
        t, c = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            dt, dc = time.perf_counter() - t, time.thread_time() - c
            with _lock:
                STAGES[stage] += dt
                CPU[stage] += dc

    setattr(owner, attr, wrapper)


def _timed_pages(fn):
    """Fetcher.pages, timing how long the main thread waits for each next page."""

    def pages(*args, **kwargs):
        it = fn(*args, **kwargs)
        while True:
            t = time.perf_counter()
            page = next(it, None)
            STAGES["main: waiting for the next page"] += time.perf_counter() - t
            if page is None:
                return
            yield page

    return pages


def _what(method: str, url: str) -> str:
    """`GET query ReplicaTaskSession filter JobSessionUid`, `POST sessionMngr`, …"""
    parts = urlsplit(url)
    q = parse_qs(parts.query)
    if "type" in q:
        flt = q.get("filter", [""])[0]
        return f"{method} query {q['type'][0]}" + (
            f" filter {re.match(r'[A-Za-z]*[<>=!]*', flt)[0]}…" if flt else ""
        )
    return f"{method} {parts.path.split('/api', 1)[-1].strip('/').split('/')[0] or '(root)'}"


def _counted(send):
    def wrapper(self, method, url, *args, **kwargs):
        with _lock:
            REQUESTS[_what(method, url)] += 1
        return send(self, method, url, *args, **kwargs)

    return wrapper


def instrument() -> None:
    client.EMClient._send = _counted(client.EMClient._send)
    # main thread, per page: wait → parents check → upsert; per batch of pages: heartbeat → commit
    crawl.Fetcher.pages = _timed_pages(crawl.Fetcher.pages)
    _timed(Loader, "present", "main: parents check (Loader.present)")
    _timed(Loader, "upsert", "main: upsert (Loader.upsert: rows, compare, write)")
    _timed(runs, "heartbeat", "main: lock heartbeat")
    # every thread (the pool fetches ahead; the first page of each type is fetched by the main thread)
    _timed(client.EMClient, "_exchange", "threads: HTTP request + body")
    _timed(parse, "document", "threads: XML parse (parse.document)")
    _timed(transform, "read", "threads: transform (transform.read)")
    # worker processes (long queries are parsed and transformed there): their peak RSS before they stop
    close = crawl.Fetcher.__exit__

    def closing(self, *exc):
        workers = getattr(self, "_workers", None)
        for pid in workers.pids if workers else []:
            WORKER_RSS.append(rss_mb(pid))
            WORKER_CPU.append(cpu_s(pid))
        close(self, *exc)

    crawl.Fetcher.__exit__ = closing


def rss_mb(pid: int | str = "self") -> float:
    """Peak RSS of a process image: VmHWM. (ru_maxrss is no good here: Linux carries the parent's
    peak across fork + exec, so a child of a big benchmark process would report the parent's.)"""
    with open(f"/proc/{pid}/status") as fh:
        hwm = re.search(r"VmHWM:\s*(\d+) kB", fh.read())
    return int(hwm[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(eng, cfg: dict, mode: str) -> dict:
    opts = pipeline.Options(
        page_size=cfg["page_size"],
        concurrency=cfg["concurrency"],
        source="bench",
        **{k: cfg[k] for k in ("worker_processes", "ahead", "batch_rows") if k in cfg},
    )
    STAGES.clear()
    CPU.clear()
    REQUESTS.clear()
    WORKER_RSS.clear()
    WORKER_CPU.clear()
    before = resource.getrusage(resource.RUSAGE_SELF)
    prof = cProfile.Profile() if cfg.get("profile") and mode == "full" else None
    t = time.perf_counter()
    if prof:
        prof.enable()
    summary = pipeline.run(eng, cfg["url"], "demo", "demo", options=opts)
    if prof:
        prof.disable()
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "wall_s": wall,
        "requests": summary.requests,
        "retries": summary.retries,
        "mode": summary.mode,
        "tables": summary.tables,
        "entities": sum(c["inserted"] + c["updated"] for c in summary.tables.values()),
        "stages": dict(STAGES),
        "cpu": dict(CPU),
        "rss_mb": rss_mb() + sum(WORKER_RSS),
        "loader_rss_mb": rss_mb(),
        "worker_rss_mb": list(WORKER_RSS),
        "worker_cpu_s": list(WORKER_CPU),
        "cpu_s": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
        "requests_by_kind": dict(REQUESTS),
    }
    if prof:
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(10)
        out["profile"] = text.getvalue()
    return out


def main() -> None:
    cfg = json.loads(sys.argv[1])
    instrument()
    eng = db.engine(cfg["db"])
    _timed(eng.dialect, "do_commit", "main: commit (the database's own)")
    t = time.perf_counter()
    db.migrate(eng)
    result = {"migrate_s": time.perf_counter() - t, "full": load(eng, cfg, "full")}
    if cfg.get("incremental"):
        result["incremental"] = load(eng, cfg, "incremental")
    eng.dispose()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
