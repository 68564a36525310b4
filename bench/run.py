"""The veeam-etl load benchmark: one estate, every load measured against its floors, in one run.

    python bench/run.py [--tasks 100000] [--latency-ms 0] [--page-size 500] [--concurrency 4]
                        [--skip-pg] [--rss-scale] [--out bench/RESULTS.md]

See bench/README.md for what each figure means. Not a test: the exit code is 0 whatever the verdicts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import httpx
import psycopg
from lxml import etree

from etl import completeness, db, pipeline, registry, schema, seams
from etl.load import _statements

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
from report import markdown  # noqa: E402 - bench/report.py: figures, ratios and verdicts

from pgserver import PostgresServer  # noqa: E402

TABLES = [t.table for t in registry.TYPES.values()]  # load order


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def estate_size(tasks: int, backup: bool = True) -> list[str]:
    """bench/serve.py's options for about `tasks` task sessions on each side (replication only
    without `backup`)."""
    jobs = max(1, round(tasks / 200))  # 20 VMs x 10 days x 1 run a day ≈ 200 task sessions a job
    sides = ["--backup-jobs", str(jobs if backup else 0)]
    sides += ["--agent-jobs", str(max(2, jobs // 25) if backup else 0)]
    sides += ["--copy-jobs", str(max(2, jobs // 25) if backup else 0)]
    return [*sides, "--jobs", str(jobs), "--vms-per-job", "20", "--days", "10", "--runs-per-day", "1"]


class Sim:
    """bench/serve.py in its own process, sized for about `tasks` task sessions on each side."""

    def __init__(self, tasks: int, running_share: float, backup: bool = True):
        args = [*estate_size(tasks, backup), "--servers", "10", "--running-share", str(running_share)]
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "serve.py"), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        info = json.loads(self.proc.stdout.readline())
        self.url, self.build_s, self.stats = info["url"], info["build_s"], info["stats"]

    def latency(self, ms: float) -> None:
        httpx.post(self.url.removesuffix("/api") + f"/bench/latency?ms={ms}").raise_for_status()

    def close(self) -> None:
        self.proc.stdin.close()  # serve.py exits when its stdin closes
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def fetch_floor(url: str, page_size: int) -> tuple[float, list[tuple[str, bytes]]]:
    """Logon, then every query page the loader asks for, in order, over one keep-alive connection."""
    bodies: list[tuple[str, bytes]] = []
    with httpx.Client(timeout=300) as http:
        started = time.perf_counter()
        token = http.post(f"{url}/sessionMngr/?v=latest", auth=("demo", "demo")).headers["X-RestSvcSessionId"]
        headers = {"X-RestSvcSessionId": token, "Accept": "application/xml"}
        for entity_type in registry.TYPES.values():
            type_name = entity_type.name
            sort = f"&sortAsc={entity_type.sort}" if entity_type.sort else ""
            page, pages = 1, 1
            while page <= pages:
                reply = http.get(
                    f"{url}/query?type={type_name}&format=Entities"
                    f"&pageSize={entity_type.page_size(page_size)}&page={page}{sort}",
                    headers=headers,
                )
                reply.raise_for_status()
                if page == 1:
                    pages = int(re.search(rb'PagesCount="(\d+)"', reply.content)[1])
                bodies.append((type_name, reply.content))
                page += 1
        return time.perf_counter() - started, bodies


def parse_floor(bodies: list[tuple[str, bytes]]) -> float:
    started = time.perf_counter()
    for _, body in bodies:
        etree.fromstring(body)
    return time.perf_counter() - started


def count_entities(bodies: list[tuple[str, bytes]]) -> int:
    return sum(body.count(f'UID="urn:veeam:{t}:'.encode()) for t, body in bodies)


def completeness_floor(bodies: list[tuple[str, bytes]]) -> int:
    """Requests a full load's completeness takes beyond the query pages (docs/completeness.md): per
    query by creation time of more than one page, ⌈(pages + 1) / SEAMS_PER_QUERY⌉ seam queries; per
    multi-page inventory query, one atomic uid list; the completeness check's first-level counts
    (one per type, per type listed by backup, and per other type before the window, when nothing
    differs)."""
    pages = Counter(t for t, _ in bodies)
    now = dt.datetime.now(dt.UTC)
    out = len(completeness.top_buckets(now, now, history=True))
    for name, n in pages.items():
        if n > 1:
            out += -(-(n + 1) // seams.SEAMS_PER_QUERY) if registry.TYPES[name].time_filter else 1
    return out


def load(db_url: str, sim: Sim, args, incremental: bool = True, profile: bool = False) -> dict:
    """A full load (and a no-change incremental run) in a fresh process: bench/child.py."""
    cfg = {
        "db": db_url,
        "url": sim.url,
        "page_size": args.page_size,
        "concurrency": args.concurrency,
        "incremental": incremental,
        "profile": profile,
    }
    out = subprocess.run(
        [sys.executable, str(BENCH / "child.py"), json.dumps(cfg)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"load into {db.masked(db_url)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.splitlines()[-1])


BATCH_ROWS = pipeline.Options().batch_rows  # what the loads commit at: the floor commits as often


def replay(conn, dialect: str, paramstyle: str, rows: dict[str, list[tuple]], page_size: int) -> float:
    """The upsert floor: the loader's own INSERT … ON CONFLICT text, executemany per page, a commit
    every BATCH_ROWS rows (whole pages) and after each table, as the loader's transactions."""
    cur = conn.cursor()
    started = time.perf_counter()
    for name in TABLES:
        sql = _statements(schema.metadata.tables[name], dialect, paramstyle).upsert
        data = rows[name]
        pending = 0
        for i in range(0, len(data), page_size):
            cur.executemany(sql, data[i : i + page_size])
            pending += len(data[i : i + page_size])
            if pending >= BATCH_ROWS:
                conn.commit()
                pending = 0
        conn.commit()
    return time.perf_counter() - started


def columns(name: str) -> str:
    return ", ".join(_statements(schema.metadata.tables[name], "sqlite", "qmark").columns)


RUN_COLUMNS = [c.name for c in schema.etl_runs.columns]  # the rows' run_id must exist in the fresh warehouse
RUNS_SQL = f"SELECT {', '.join(RUN_COLUMNS)} FROM etl_runs"
RUNS_INSERT = (
    f"INSERT INTO etl_runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join(['{0}'] * len(RUN_COLUMNS))})"
)


def sqlite_floor(loaded: str, fresh: str, page_size: int) -> float:
    with closing(sqlite3.connect(loaded)) as src:
        rows = {t: src.execute(f"SELECT {columns(t)} FROM {t} ORDER BY rowid").fetchall() for t in TABLES}
        run_rows = src.execute(RUNS_SQL).fetchall()
    eng = db.engine(f"sqlite:///{fresh}")
    db.migrate(eng)
    eng.dispose()
    with closing(sqlite3.connect(fresh)) as conn:
        db._sqlite_pragmas(conn, None)  # the warehouse's own pragmas
        conn.executemany(RUNS_INSERT.format("?"), run_rows)
        conn.commit()
        return replay(conn, "sqlite", "qmark", rows, page_size)


def parents_first(name: str, rows: list[tuple]) -> list[tuple]:
    """`rows` of table `name` (in `columns(name)` order) reordered, stably, so that a row referring to
    another row of the same table (a retry session's parent_session_uid) comes after it, as the loader
    stored them. PostgreSQL's physical order (ctid) is not the order of insertion once rows are updated."""
    table = schema.metadata.tables[name]
    names = columns(name).split(", ")
    refs = [
        names.index(fk.parent.name)
        for fk in table.foreign_keys
        if fk.column.table is table and fk.parent.name in names
    ]
    if not refs:
        return rows
    key = names.index("uid")
    by_uid = {r[key]: r for r in rows}

    def depth(row: tuple) -> int:
        """How many rows of the table stand above `row` (0 for a row that refers to none of them)."""
        n, seen = 0, {row[key]}
        while parent := next((by_uid[row[i]] for i in refs if row[i] in by_uid and row[i] not in seen), None):
            n, row = n + 1, parent
            seen.add(row[key])
        return n

    return sorted(rows, key=depth)


def pg_floor(pg: PostgresServer, loaded: str, fresh: str, page_size: int) -> float:
    with psycopg.connect(pg.psql_dsn(loaded)) as src:
        rows = {
            t: parents_first(t, src.execute(f"SELECT {columns(t)} FROM {t} ORDER BY ctid").fetchall())
            for t in TABLES
        }
        run_rows = src.execute(RUNS_SQL).fetchall()
    pg.create_database(fresh)
    eng = db.engine(pg.url(fresh))
    db.migrate(eng)
    eng.dispose()
    with psycopg.connect(pg.psql_dsn(fresh)) as conn:
        conn.cursor().executemany(RUNS_INSERT.format("%s"), run_rows)
        conn.commit()
        return replay(conn, "postgresql", "format", rows, page_size)


def machine(pg_version: str | None) -> dict:
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    mem = re.search(r"MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text())
    return {
        "CPU": cpu[1] if cpu else platform.processor(),
        "cores": os.cpu_count(),
        "RAM": f"{int(mem[1]) / 2**20:.1f} GiB" if mem else "?",
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL": pg_version or "not measured",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def revision() -> str:
    """The commit that last changed etl/ (and any uncommitted changes there): the code measured."""
    git = ["git", "-C", str(BENCH.parent)]
    head = subprocess.run(
        [*git, "log", "-1", "--format=%h", "--", "etl"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "etl"], capture_output=True, text=True
    ).stdout
    return f"{head}" + (
        " with uncommitted changes in etl/ (" + ", ".join(line[3:] for line in dirty.splitlines()) + ")"
        if dirty.strip()
        else ""
    )


def best(n: int, measure, key=lambda x: x):
    """The fastest of n measurements: other work on the machine only ever adds time."""
    out = None
    for i in range(n):
        x = measure(i)
        out = x if out is None or key(x) < key(out) else out
    return out


def wall(result: dict) -> float:
    return result["full"]["wall_s"]


def run(args) -> dict:
    r: dict = {
        "args": args,
        "command": "python " + " ".join(sys.argv),
        "revision": revision(),
        "load_before": os.getloadavg()[0],
    }
    n = args.repeat
    sim = Sim(args.tasks, args.running_share, backup=args.side == "both")
    tmp = tempfile.TemporaryDirectory(prefix="veeam-etl-bench-")
    base = Path(tmp.name)
    try:
        r["estate"], r["sim_build_s"], r["types"] = sim.stats, sim.build_s, len(registry.TYPES)
        log(f"simulator built in {sim.build_s:.1f} s: {sim.stats}")
        r["cold_s"], _ = fetch_floor(sim.url, args.page_size)  # first pass renders and caches every entity
        # Each round measures the floors and the load back to back, so that a burst of other work on
        # the machine hits both; every figure is the fastest of the rounds.
        fetches, parses, loads, floors = [], [], [], []
        for i in range(n):
            seconds, bodies = fetch_floor(sim.url, args.page_size)
            fetches.append(seconds)
            r["pages"], r["entities"] = len(bodies), count_entities(bodies)
            r["completeness"] = completeness_floor(bodies)
            r["bytes"] = sum(len(b) for _, b in bodies)
            parses.append(parse_floor(bodies))
            bodies.clear()  # hundreds of MB: not needed by the loads
            loads.append(load(f"sqlite:///{base / f'load{i}.db'}", sim, args))
            floors.append(sqlite_floor(str(base / f"load{i}.db"), str(base / f"floor{i}.db"), args.page_size))
            log(
                f"round {i + 1}: fetch {fetches[-1]:.1f} s, parse {parses[-1]:.1f} s, SQLite load "
                f"{wall(loads[-1]):.1f} s, SQLite upsert floor {floors[-1]:.1f} s"
            )
        r["fetch_s"], r["parse_s"], r["sqlite_floor_s"] = min(fetches), min(parses), min(floors)
        r["sqlite"] = min(loads, key=wall)
        with closing(sqlite3.connect(base / "load0.db")) as conn:  # what a correct rerun must read again
            r["running"] = {
                t.table: conn.execute(
                    f"SELECT count(*) FROM {t.table} WHERE state IS NULL OR state != ?", (t.final_state,)
                ).fetchone()[0]
                for t in registry.TYPES.values()
                if t.final_state is not None
            }
        r["profile"] = load(f"sqlite:///{base / 'profile.db'}", sim, args, incremental=False, profile=True)[
            "full"
        ]
        log("profiled SQLite load done")
        if args.latency_ms:
            sim.latency(args.latency_ms)
            r["latency"] = best(
                n,
                lambda i: load(f"sqlite:///{base / f'latency{i}.db'}", sim, args, incremental=False),
                key=wall,
            )["full"]
            sim.latency(0)
            log(f"SQLite load at {args.latency_ms:g} ms latency {r['latency']['wall_s']:.1f} s")
        if not args.skip_pg:
            with PostgresServer() as pg:
                with psycopg.connect(pg.psql_dsn()) as conn:
                    r["pg_version"] = conn.execute("SHOW server_version").fetchone()[0]

                def pg_load(i: int) -> dict:
                    pg.create_database(f"load{i}")
                    return load(pg.url(f"load{i}"), sim, args)

                loads, floors = [], []
                for i in range(n):  # rounds, as for SQLite
                    loads.append(pg_load(i))
                    floors.append(pg_floor(pg, f"load{i}", f"floor{i}", args.page_size))
                    log(
                        f"round {i + 1}: PostgreSQL load {wall(loads[-1]):.1f} s, upsert floor {floors[-1]:.1f} s"
                    )
                r["pg"], r["pg_floor_s"] = min(loads, key=wall), min(floors)
    finally:
        sim.close()
    if args.rss_scale:
        r["scale"] = {}
        for tasks in (100_000, 1_000_000):
            if tasks == args.tasks:
                r["scale"][tasks] = {**r["sqlite"]["full"], "estate": r["estate"]}
                continue
            big = Sim(tasks, args.running_share, backup=args.side == "both")
            try:
                log(f"simulator of {tasks} tasks built in {big.build_s:.0f} s")
                full = load(f"sqlite:///{base / f'scale{tasks}.db'}", big, args, incremental=False)
                r["scale"][tasks] = {**full["full"], "estate": big.stats}
                log(
                    f"SQLite load of {tasks} tasks: {full['full']['wall_s']:.0f} s, {full['full']['rss_mb']:.0f} MB"
                )
            finally:
                big.close()
    tmp.cleanup()
    r["machine"] = machine(r.get("pg_version"))
    r["load_after"] = os.getloadavg()[0]
    if revision() != r["revision"]:
        r["revision"] += f", then {revision()} (etl/ changed during the run)"
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--tasks", type=int, default=100_000, help="task sessions on each side of the estate (about)"
    )
    ap.add_argument(
        "--side",
        choices=["both", "replication"],
        default="both",
        help="the estate: replication and backup (default), or replication only (as measured before the backup side)",
    )
    ap.add_argument(
        "--latency-ms", type=float, default=0, help="also load SQLite with this delay on every request"
    )
    ap.add_argument("--page-size", type=int, default=500)
    ap.add_argument(
        "--running-share",
        type=float,
        default=0.0,
        help="share of jobs whose newest run is still running at the estate's clock (0: a steady estate; "
        "the tests use 0.3)",
    )
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--skip-pg", action="store_true", help="no PostgreSQL load")
    ap.add_argument("--rss-scale", action="store_true", help="also SQLite peak RSS at 100k and 1M tasks")
    ap.add_argument("--repeat", type=int, default=1, help="take the fastest of N runs of each floor and load")
    ap.add_argument("--out", default=str(BENCH / "RESULTS.md"))
    args = ap.parse_args()
    started = time.perf_counter()
    r = run(args)
    r["bench_s"] = time.perf_counter() - started
    text = markdown(r)
    Path(args.out).write_text(text)
    print(text)
    log(f"wrote {args.out} in {r['bench_s']:.0f} s")


if __name__ == "__main__":
    main()
