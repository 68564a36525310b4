"""The fleet benchmark: N simulated Enterprise Managers into one PostgreSQL, all at once against one by one.

    python bench/fleet.py [--ems 10] [--tasks 20000] [--parallel 10] [--page-size 500] [--concurrency 4]
                          [--out bench/FLEET.md]

Each EM is bench/serve.py in its own process (seeds 1..N, about `--tasks` task sessions on each side, so the
loader's CPU is measured alone). After a warm-up pass over every EM's query pages (the simulator
renders and caches each entity on first use: the first load to touch an EM would otherwise pay for
that), it measures, on one throwaway PostgreSQL server (tests/pgserver.py):

1. one after the other: a full load of each EM alone (`veeam-etl run --config --only NAME`) into
   the database `seq`; the figure is the sum of their wall times;
2. all at once: a full load of the whole estate (`--parallel`) into the database `conc`;
3. the simulators' clocks move 15 minutes; an incremental run of each EM alone into `seq` (the
   cost of one scheduled run per EM: requests, seconds, rows) and of the whole estate at once
   into `conc` (the wall time one loader host needs per tick).

Every load runs in a fresh process (`bench/fleet.py child ...`: `etl.fleet.run_estate`). Prints
the Markdown it writes to `--out`. A measurement, not a test: the exit code is 0 whatever it finds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psycopg

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
from run import estate_size, fetch_floor, log, machine, revision  # noqa: E402 - bench/run.py's helpers

from pgserver import PostgresServer  # noqa: E402

TICK_MINUTES = 15


class Sims:
    """N bench/serve.py processes, started side by side."""

    def __init__(self, n: int, tasks: int):
        size = [*estate_size(tasks), "--servers", "3"]
        self.procs = [
            subprocess.Popen(
                [sys.executable, str(BENCH / "serve.py"), "--seed", str(i + 1), *size],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(n)
        ]
        self.info = [json.loads(p.stdout.readline()) for p in self.procs]
        self.urls = [i["url"] for i in self.info]

    def advance(self, minutes: float) -> None:
        for url in self.urls:
            httpx.post(url.removesuffix("/api") + f"/admin/advance?minutes={minutes}").raise_for_status()

    def close(self) -> None:
        for p in self.procs:
            p.stdin.close()  # serve.py exits when its stdin closes
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def estate_file(path: Path, urls: list[str], args) -> Path:
    text = (
        f'parallel = {args.parallel}\n[defaults]\nuser = "demo"\npassword_env = "VEEAM_EM_PASSWORD"\n'
        f"page_size = {args.page_size}\nconcurrency = {args.concurrency}\n"
    )
    text += "".join(f'\n[[em]]\nname = "em{i:02d}"\nurl = "{url}"\n' for i, url in enumerate(urls, 1))
    path.write_text(text)
    return path


def load(db_url: str, estate: Path, only: list[str] | None = None, parallel: int = 1) -> dict:
    """One `fleet.run_estate` in a fresh process; its outcomes, wall and CPU time."""
    argv = [
        sys.executable,
        str(BENCH / "fleet.py"),
        "child",
        db_url,
        str(estate),
        str(parallel),
        *(only or []),
    ]
    env = {**os.environ, "VEEAM_EM_PASSWORD": "demo"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"load failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def child(db_url: str, estate_path: str, parallel: str, *only: str) -> None:
    """The measured process: migrate (not timed), then one run_estate; one JSON line on stdout."""
    from etl import db, fleet
    from etl import estate as estates

    eng = db.engine(db_url)
    db.ensure_current(eng)
    eng.dispose()
    estate = estates.load(estate_path).select(only)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    result = fleet.run_estate(db_url, estate, parallel=int(parallel))
    own = resource.getrusage(resource.RUSAGE_SELF)
    readers = resource.getrusage(resource.RUSAGE_CHILDREN)  # reader processes, ended by now
    print(
        json.dumps(
            {
                "wall_s": result.duration_s,
                "parallel": result.parallel,
                "cpu_s": own.ru_utime + own.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime,
                "reader_cpu_s": readers.ru_utime + readers.ru_stime,
                "ems": [
                    {
                        "name": o.name,
                        "status": o.status,
                        "error": o.error,
                        "seconds": o.duration_s,
                        "rows": o.rows_inserted + o.rows_updated,
                        "inserted": o.rows_inserted,
                        "requests": o.requests,
                    }
                    for o in result.outcomes
                ],
            }
        )
    )


def warm(urls: list[str], page_size: int) -> float:
    """Every query page of every EM once, four EMs at a time: the simulators' caches are warm after."""
    started = time.perf_counter()
    pending = list(urls)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                url = pending.pop()
            fetch_floor(url, page_size)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def table_rows(pg: PostgresServer, dbname: str) -> dict[str, list[int]]:
    """{table: [rows, bytes]} of the entity tables, bytes with indexes and TOAST (pg_total_relation_size)."""
    from etl import registry

    with psycopg.connect(pg.psql_dsn(dbname), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        return {
            t.name: list(
                conn.execute(
                    f"SELECT count(*), pg_total_relation_size('{t.name}') FROM {t.name}"  # noqa: S608 - our names
                ).fetchone()
            )
            for t in registry.tables()
        }


def measure(args) -> dict:
    r: dict = {"args": vars(args).copy(), "revision": revision(), "load_before": os.getloadavg()[0]}
    tmp = tempfile.TemporaryDirectory(prefix="veeam-fleet-bench-")
    sims = Sims(args.ems, args.tasks)
    try:
        r["estate"] = [i["stats"] for i in sims.info]
        r["build_s"] = max(i["build_s"] for i in sims.info)
        log(f"{args.ems} simulators up (slowest build {r['build_s']:.1f} s)")
        r["warm_s"] = warm(sims.urls, args.page_size)
        log(f"warm-up pass over every EM: {r['warm_s']:.1f} s")
        estate = estate_file(Path(tmp.name) / "estate.toml", sims.urls, args)
        names = [f"em{i:02d}" for i in range(1, args.ems + 1)]
        with PostgresServer() as pg:
            with psycopg.connect(pg.psql_dsn()) as conn:
                r["pg_version"] = conn.execute("SHOW server_version").fetchone()[0]
            pg.create_database("seq")
            pg.create_database("conc")
            r["seq_full"] = []
            for name in names:
                r["seq_full"].append(load(pg.url("seq"), estate, [name]))
                log(f"{name} alone: full load {r['seq_full'][-1]['wall_s']:.1f} s")
            r["conc_full"] = load(pg.url("conc"), estate, parallel=args.parallel)
            log(f"all {args.ems} at once: full load {r['conc_full']['wall_s']:.1f} s")
            r["rows"] = table_rows(pg, "conc")
            sims.advance(TICK_MINUTES)
            r["seq_incr"] = [load(pg.url("seq"), estate, [name]) for name in names]
            log(f"incremental, one by one: {sum(x['wall_s'] for x in r['seq_incr']):.1f} s in all")
            r["conc_incr"] = load(pg.url("conc"), estate, parallel=args.parallel)
            log(f"incremental, all at once: {r['conc_incr']['wall_s']:.1f} s")
    finally:
        sims.close()
        tmp.cleanup()
    r["machine"] = machine(r.get("pg_version"))
    r["load_after"] = os.getloadavg()[0]
    return r


def _failed(r: dict) -> list[str]:
    runs = [*r["seq_full"], r["conc_full"], *r["seq_incr"], r["conc_incr"]]
    return [f"{e['name']}: {e['error']}" for x in runs for e in x["ems"] if e["status"] != "succeeded"]


def markdown(r: dict) -> str:
    a = r["args"]
    seq_full = sum(x["wall_s"] for x in r["seq_full"])
    conc_full = r["conc_full"]["wall_s"]
    full_ems = r["conc_full"]["ems"]
    incr_alone = [e for x in r["seq_incr"] for e in x["ems"]]
    seq_incr = sum(x["wall_s"] for x in r["seq_incr"])
    conc_incr = r["conc_incr"]["wall_s"]
    tasks = sum(s.get("replica_task_sessions", 0) + s.get("backup_task_sessions", 0) for s in r["estate"])
    per_tick = TICK_MINUTES * 60
    # EMs one host serves per tick if the incremental cost per EM stays what it was here (all at once)
    capacity = int(a["ems"] * per_tick / conc_incr) if conc_incr else 0
    m = r["machine"]
    lines = [
        "# veeam-etl fleet benchmark: results",
        "",
        f"`python bench/fleet.py --ems {a['ems']} --tasks {a['tasks']} --parallel {a['parallel']}` — "
        f"the whole run took {r['bench_s'] / 60:.1f} min. Code measured: {r['revision']}.",
        "",
        f"Machine: CPU {m['CPU']}, cores {m['cores']}, RAM {m['RAM']}, Python {m['Python']}, "
        f"PostgreSQL {m['PostgreSQL']}, date {m['date']}; load average {r['load_before']:.1f} before, "
        f"{r['load_after']:.1f} after (other work on the machine adds noise).",
        "",
        f"Estate: {a['ems']} simulated EMs (bench/serve.py, seeds 1–{a['ems']}, each in its own process), "
        f"about {a['tasks']:,} task sessions on each side (replication and backup)"
        + (f" ({tasks:,} in all)" if tasks else "")
        + f"; page size {a['page_size']}, {a['concurrency']} requests in flight per EM. "
        f"Simulators warmed by one pass over every query page ({r['warm_s']:.1f} s) before any load.",
        "",
        "## Full load: all at once against one after the other",
        "",
        "| figure | value |",
        "|---|---|",
        f"| sum of the {a['ems']} single-EM full loads (one after the other) | {seq_full:.1f} s |",
        f"| **all {a['ems']} at once** (`--parallel {r['conc_full']['parallel']}`) | **{conc_full:.1f} s** |",
        f"| ratio (all at once / sum of single loads) | {conc_full / seq_full:.2f}× |",
        f"| rows written (all at once) | {sum(e['rows'] for e in full_ems):,} |",
        f"| requests (all at once) | {sum(e['requests'] for e in full_ems):,} |",
        f"| CPU of the loading process / its reader processes (all at once) | "
        f"{r['conc_full']['cpu_s']:.1f} s / {r['conc_full']['reader_cpu_s']:.1f} s |",
        "",
        "Warehouse after the full load (PostgreSQL, after VACUUM ANALYZE; bytes include indexes):",
        "",
        "| table | rows | MiB | bytes per row |",
        "|---|---|---|---|",
        *(f"| {t} | {n:,} | {b / 2**20:.1f} | {b / n if n else 0:,.0f} |" for t, (n, b) in r["rows"].items()),
        f"| all | {sum(n for n, _ in r['rows'].values()):,} | {sum(b for _, b in r['rows'].values()) / 2**20:.1f} "
        f"| {sum(b for _, b in r['rows'].values()) / max(1, sum(n for n, _ in r['rows'].values())):,.0f} |",
        "",
        f"## One scheduled run: incremental, {TICK_MINUTES} simulated minutes later",
        "",
        "| figure | value |",
        "|---|---|",
        f"| one EM alone: seconds (median, max) | {statistics.median(e['seconds'] for e in incr_alone):.2f} s, "
        f"{max(e['seconds'] for e in incr_alone):.2f} s |",
        f"| one EM alone: requests (median, max) | {statistics.median(e['requests'] for e in incr_alone):.0f}, "
        f"{max(e['requests'] for e in incr_alone)} |",
        f"| one EM alone: rows written (median, max) | {statistics.median(e['rows'] for e in incr_alone):,.0f}, "
        f"{max(e['rows'] for e in incr_alone):,} |",
        f"| sum of the {a['ems']} single-EM incremental runs | {seq_incr:.1f} s |",
        f"| **all {a['ems']} at once** | **{conc_incr:.1f} s** ({conc_incr / seq_incr:.2f}× the sum) |",
        f"| EMs one loader host serves at a {TICK_MINUTES}-minute cadence, fully busy "
        f"({a['ems']} × {per_tick} s / {conc_incr:.1f} s) | {capacity:,} |",
        "",
        "## Per EM",
        "",
        "| EM | full load alone | rows | requests | incremental alone | requests | rows |",
        "|---|---|---|---|---|---|---|",
    ]
    for alone, incr in zip(r["seq_full"], r["seq_incr"], strict=True):
        f, i = alone["ems"][0], incr["ems"][0]
        lines.append(
            f"| {f['name']} | {f['seconds']:.1f} s | {f['rows']:,} | {f['requests']} | {i['seconds']:.2f} s "
            f"| {i['requests']} | {i['rows']:,} |"
        )
    failed = _failed(r)
    if failed:
        lines += ["", "**Loads that failed** (the figures above are not comparable):", ""]
        lines += [f"- {f}" for f in failed]
    return "\n".join(lines) + "\n"


def main() -> None:
    if sys.argv[1:2] == ["child"]:
        child(*sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ems", type=int, default=10, help="simulated Enterprise Managers")
    ap.add_argument("--tasks", type=int, default=20_000, help="task sessions per EM (about)")
    ap.add_argument("--parallel", type=int, default=10, help="EMs loaded at once in the concurrent loads")
    ap.add_argument("--page-size", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--out", default=str(BENCH / "FLEET.md"))
    args = ap.parse_args()
    started = time.perf_counter()
    r = measure(args)
    r["bench_s"] = time.perf_counter() - started
    text = markdown(r)
    Path(args.out).write_text(text)
    print(text)
    log(f"wrote {args.out} in {r['bench_s']:.0f} s")


if __name__ == "__main__":
    main()
