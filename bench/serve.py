"""Serve a simulated Enterprise Manager for the benchmark, in its own process.

    python bench/serve.py --servers 10 --jobs 500 --vms-per-job 20 --days 10 --runs-per-day 1 \
        --backup-jobs 500 --agent-jobs 20 --copy-jobs 20

Replication and backup jobs share `--vms-per-job`, `--days` and `--runs-per-day`, so 500 jobs of each
kind give ~100k replica tasks and ~100k backup tasks (with as many VM restore points). The backup
side is off (0 jobs) unless asked for.

Prints one JSON line (url, build seconds, estate counts) once it listens on a free loopback port,
then serves until SIGTERM or until stdin closes. `POST /bench/latency?ms=N` sets a fixed delay that
every later request sleeps before it is served (0 turns it off), so one warm simulator serves the
zero-latency and the high-latency loads alike.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from etl.simulator import Faults, Simulator, World


class Latency(Faults):
    """No faults; an adjustable sleep before every request (the server answers each connection on its own thread)."""

    def __init__(self, ms: float = 0.0):
        super().__init__()
        self.delay = ms / 1000

    def intercept(self, ctx):
        if ctx.path == "/bench/latency":
            self.delay = float(ctx.query.get("ms") or 0) / 1000
            return 204, {}, b""
        if self.delay:
            time.sleep(self.delay)
        return None


def main() -> None:
    ap = argparse.ArgumentParser()
    for name, default in (
        ("seed", 1),
        ("servers", 10),
        ("jobs", 500),
        ("vms-per-job", 20),
        ("days", 10),
        ("runs-per-day", 1),
        ("backup-jobs", 0),
        ("agent-jobs", 0),
        ("copy-jobs", 0),
        ("agent-computers", 3),
    ):
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--retention-days", type=float, default=None)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--running-share", type=float, default=0.3)
    a = ap.parse_args()
    started = time.perf_counter()
    world = World(
        seed=a.seed,
        servers=a.servers,
        jobs=a.jobs,
        vms_per_job=a.vms_per_job,
        days=a.days,
        runs_per_day=a.runs_per_day,
        running_share=a.running_share,
        backup_jobs=a.backup_jobs,
        agent_jobs=a.agent_jobs,
        copy_jobs=a.copy_jobs,
        agent_computers=a.agent_computers,
        retention_days=a.retention_days,
    )  # the default fixed `now`: the same estate on every run
    built = time.perf_counter() - started
    sim = Simulator(world, faults=Latency(a.latency_ms)).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(json.dumps({"url": sim.url, "build_s": built, "stats": world.stats()}), flush=True)
    try:
        sys.stdin.read()  # the benchmark holds our stdin open; when it goes away, so do we
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
