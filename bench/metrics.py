"""How long `veeam-etl metrics` takes, and its peak memory, on the load benchmark's estates.

    python bench/metrics.py [--tasks 100000] [--tasks 10000] [--repeat 3] [--skip-pg]

For each size: the benchmark's estate (bench/run.py's `estate_size`, `--running-share 0`) served by
bench/serve.py and loaded with `veeam-etl run` into a fresh SQLite file and a throwaway PostgreSQL
(tests/pgserver.py), whose tables are then ANALYZEd as autovacuum does soon after a load (without
statistics PostgreSQL plans the status views for empty tables); then `veeam-etl metrics --out FILE`
in a fresh process, `--repeat` times. Prints a
Markdown table: the command's wall time (the fastest run; interpreter start included), the collection
alone (`etl.metrics.write`: what each scrape of `--listen` costs), peak RSS (VmHWM) and the samples
written. Not a test: the figures depend on the machine and what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests"))
from run import Sim, log  # noqa: E402 - bench/run.py: the estate and its simulator

from pgserver import PostgresServer  # noqa: E402

# One `veeam-etl metrics --out` in this process: the collection timed alone, then the peak RSS.
CHILD = """
import json, sys, time
from etl import db, metrics
eng = db.warehouse(sys.argv[1], mode="read")
started = time.perf_counter()
metrics.write(eng, sys.argv[2])
collect_s = time.perf_counter() - started
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"collect_s": collect_s, "rss_mb": hwm / 1024}))
"""


def load(db_url: str, sim: Sim) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "etl", "run", "--url", sim.url, "--user", "demo", "--db", db_url,
         "--source-name", "bench"],
        env={**os.environ, "VEEAM_EM_PASSWORD": "demo"},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"loading {db_url} failed:\n{done.stderr[-3000:]}")


def measure(db_url: str, out: Path, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, db_url, str(out)], capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"metrics of {db_url} failed:\n{done.stderr[-3000:]}")
        runs.append({**json.loads(done.stdout), "wall_s": wall})
    best = min(runs, key=lambda r: r["wall_s"])
    samples = sum(1 for line in out.read_text().splitlines() if line and not line.startswith("#"))
    return {**best, "rss_mb": max(r["rss_mb"] for r in runs), "samples": samples, "bytes": out.stat().st_size}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, action="append", help="task sessions a side (repeatable)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-pg", action="store_true")
    args = ap.parse_args()
    sizes = args.tasks or [100_000]
    rows = []
    with tempfile.TemporaryDirectory(prefix="veeam-metrics-bench-") as tmp:
        pg = None if args.skip_pg else PostgresServer().start()
        try:
            for tasks in sizes:
                log(f"estate of about {tasks} task sessions a side")
                sim = Sim(tasks, running_share=0.0)
                targets = {"SQLite": f"sqlite:///{tmp}/bench-{tasks}.db"}
                if pg is not None:
                    pg.create_database(f"bench_{tasks}")
                    targets["PostgreSQL"] = pg.url(f"bench_{tasks}")
                try:
                    for name, url in targets.items():
                        log(f"loading into {name}")
                        load(url, sim)
                        if name == "PostgreSQL":
                            with psycopg.connect(pg.psql_dsn(f"bench_{tasks}"), autocommit=True) as conn:
                                conn.execute("ANALYZE")
                        log(f"measuring veeam-etl metrics on {name}")
                        rows.append((tasks, name, measure(url, Path(tmp) / "veeam.prom", args.repeat)))
                finally:
                    sim.close()
        finally:
            if pg is not None:
                pg.stop()
    print(
        "| task sessions a side | warehouse | command (s) | collection (s) | peak RSS (MB) | samples | bytes |"
    )
    print("|---|---|---|---|---|---|---|")
    for tasks, name, r in rows:
        print(
            f"| {tasks:,} | {name} | {r['wall_s']:.2f} | {r['collect_s']:.2f} | {r['rss_mb']:.0f} "
            f"| {r['samples']:,} | {r['bytes']:,} |"
        )


if __name__ == "__main__":
    main()
