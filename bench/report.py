"""bench/RESULTS.md from the figures bench/run.py measured: figures with their floors, stages, targets."""

from __future__ import annotations

from etl import registry

MAIN_STAGES = [
    "main: waiting for the next page",
    "main: parents check (Loader.present)",
    "main: upsert (Loader.upsert: rows, compare, write)",
    "main: lock heartbeat",
    "main: commit (the database's own)",
]
THREAD_STAGES = [
    "threads: HTTP request + body",
    "threads: XML parse (parse.document)",
    "threads: transform (transform.read)",
]


def _s(x: float) -> str:
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**FAIL**"


def _stages(full: dict) -> dict[str, tuple[float, float | None]]:
    """(wall, CPU of the thread) per stage: main-thread walls sum to the load's wall; `threads:` rows
    are summed over every thread."""
    s, cpu, wall = full["stages"], full["cpu"], full["wall_s"]
    out = {k: (s.get(k, 0.0), cpu.get(k, 0.0)) for k in MAIN_STAGES}
    out[MAIN_STAGES[0]] = (s.get(MAIN_STAGES[0], 0.0), None)
    out["main: the rest (lock, run record, logon, quarantine, progress, …)"] = (
        wall - sum(s.get(k, 0.0) for k in MAIN_STAGES),
        None,
    )
    out.update({k: (s.get(k, 0.0), cpu.get(k, 0.0)) for k in THREAD_STAGES})
    out["**wall** (CPU: the whole process)"] = (wall, full["cpu_s"])
    return out


def _cell(wall: float, cpu: float | None) -> str:
    return _s(wall) + (f" ({_s(cpu)})" if cpu is not None else "")


def unavoidable(full: dict) -> int:
    """Requests beyond the query pages that EM's API leaves no way around: parents fetched by
    link (jobs no query lists: agent jobs' parents, copy workers, per-computer agent jobs). The
    `JobUid` queries that find a backup's or replica's job are not in it: they count against the
    5% the target allows."""
    kinds = full.get("requests_by_kind", {})
    return sum(
        n
        for kind, n in kinds.items()
        if kind.startswith("GET ") and kind.split()[1] not in ("query", "(root)")
    )


def job_queries(full: dict) -> int:
    """`type=…&filter=JobUid==…` queries of a run (a backup's or replica's job)."""
    return sum(n for kind, n in full.get("requests_by_kind", {}).items() if "filter JobUid" in kind)


def markdown(r: dict) -> str:
    a, est = r["args"], r["estate"]
    entities, pages = r["entities"], r["pages"]
    extra = unavoidable(r["sqlite"]["full"])
    complete = r.get("completeness", 0)  # seams, atomic uid lists, first-level counts (bench/run.py)
    min_requests = pages + extra + complete + 3
    # a correct no-change rerun still reads every running session again: one query per type
    # (new or unfinished), BackupServer, logon/logoff
    running = r["running"]
    # one query per type (inventory whole, the rest by window), logon and logoff, and every
    # session still running read again
    rerun_min = 3 + r.get("types", 5) + sum(max(0, -(-n // a.page_size) - 1) for n in running.values())
    rows: list[tuple[str, str, str, str]] = []  # figure, value, floor, ratio
    targets: list[tuple[str, str, str, bool]] = []  # target, measured, limit, ok
    rows.append(
        (
            "Estate",
            f"{est['backup_servers']} servers; replication: {_n(est['replica_job_sessions'])} job sessions, "
            f"{_n(est['vm_replica_points'])} replica points, {_n(est['replica_task_sessions'])} task sessions; "
            f"backup: {_n(est.get('backup_job_sessions', 0))} job sessions, "
            f"{_n(est.get('backup_task_sessions', 0))} task sessions, {_n(est.get('vm_restore_points', 0))} VM "
            f"restore points, {_n(est.get('backup_files', 0))} backup files "
            f"= {_n(entities)} entities in {pages} query pages of {a.page_size} "
            f"(jobs {registry.JOB.page_size(a.page_size)})",
            f"simulator built in {_s(r['sim_build_s'])}",
            "",
        )
    )
    rows.append(
        (
            "Simulator, first (cold) pass",
            f"{_s(r['cold_s'])}: {pages / r['cold_s']:,.0f} pages/s, "
            f"{entities / r['cold_s']:,.0f} entities/s",
            "renders and caches every entity",
            "",
        )
    )
    rows.append(
        (
            "Fetch floor (warm, 1 connection, sequential)",
            f"{_s(r['fetch_s'])}: {pages / r['fetch_s']:,.0f} "
            f"pages/s, {entities / r['fetch_s']:,.0f} entities/s, {r['bytes'] / 2**20:,.0f} MiB",
            "= the simulator's serve rate",
            "",
        )
    )
    rows.append(
        (
            "Parse floor (lxml.etree.fromstring)",
            _s(r["parse_s"]),
            f"{r['bytes'] / 2**20 / r['parse_s']:,.0f} MiB/s",
            "",
        )
    )
    for key, label, floor_key in (("sqlite", "SQLite", "sqlite_floor_s"), ("pg", "PostgreSQL", "pg_floor_s")):
        if key not in r:
            continue
        full, inc = r[key]["full"], r[key]["incremental"]
        floor = r["fetch_s"] + r["parse_s"] + r[floor_key]
        ratio = full["wall_s"] / floor
        rows.append(
            (
                f"Upsert floor, {label} (executemany per page, commit per batch)",
                _s(r[floor_key]),
                f"{entities / r[floor_key]:,.0f} rows/s",
                "",
            )
        )
        rows.append(
            (
                f"**{label} full load**",
                f"{_s(full['wall_s'])}: {full['entities'] / full['wall_s']:,.0f} entities/s",
                f"fetch + parse + upsert floors = {_s(floor)}",
                f"{ratio:.2f}×",
            )
        )
        rows.append(
            (
                f"{label} full load, requests",
                _n(full["requests"]),
                f"{pages} pages + {extra} parents by link + {complete} for completeness + 3 = {min_requests} "
                f"(the run's {job_queries(full)} `JobUid` queries are not in it)",
                f"{full['requests'] / min_requests:.3f}×",
            )
        )
        readers = full.get("worker_rss_mb") or []
        rows.append(
            (
                f"{label} full load, peak RSS",
                f"{full['rss_mb']:.0f} MB",
                f"loading process {full.get('loader_rss_mb', full['rss_mb']):.0f} MB"
                + "".join(f" + worker process {mb:.0f} MB" for mb in readers),
                "",
            )
        )
        rows.append(
            (
                f"{label} full load, CPU time of the loader process",
                _s(full["cpu_s"]),
                f"{full['cpu_s'] / full['wall_s']:.0%} of the wall",
                "",
            )
        )
        for cpu in full.get("worker_cpu_s") or []:
            rows.append(
                (
                    f"{label} full load, CPU time of the worker process",
                    _s(cpu),
                    f"{cpu / full['wall_s']:.0%} of the wall (parse, transform, pickling)",
                    "",
                )
            )
        rows.append((f"{label} migrate (before the load, not in its wall)", _s(r[key]["migrate_s"]), "", ""))
        inc_share = (inc["requests"] - 3) / full["requests"]
        rows.append(
            (
                f"{label} no-change incremental run",
                f"{_s(inc['wall_s'])}, {inc['requests']} requests, {inc['entities']} rows written",
                f"{sum(n for t, n in running.items() if 'job' in t)} job and "
                f"{_n(sum(n for t, n in running.items() if 'task' in t))} task sessions are running: a correct "
                f"rerun reads them again, ≥ {rerun_min} requests",
                f"{inc['requests'] / full['requests']:.1%} of the full "
                f"load's requests ({inc_share:.1%} without logon/logoff)",
            )
        )
        targets.append(
            (
                f"{label} full load ≤ 1.5× (fetch + parse + upsert floors)",
                f"{_s(full['wall_s'])} / {_s(floor)} = {ratio:.2f}×",
                "1.5×",
                ratio <= 1.5,
            )
        )
        limit = 1.05 * (pages + extra + complete) + 3
        targets.append(
            (
                f"{label} requests ≤ 1.05 × (pages + parents by link + completeness) + 3",
                _n(full["requests"]),
                f"{limit:.0f}",
                full["requests"] <= limit,
            )
        )
        servers = est["backup_servers"]
        targets.append(
            (
                f"{label} no-change incremental requests ≤ 2% of the full load's + 3 + one per backup server",
                f"{inc['requests']} ({inc['requests'] - 3} + 3)",
                f"{0.02 * full['requests']:.1f} + 3 + {servers}",
                inc["requests"] - 3 <= 0.02 * full["requests"] + servers,
            )
        )
    if "latency" in r:
        lat, zero = r["latency"]["wall_s"], r["sqlite"]["full"]["wall_s"]
        rows.append(
            (
                f"SQLite full load at {a.latency_ms:g} ms per request",
                f"{_s(lat)}, {r['latency']['requests']} requests",
                f"zero-latency wall {_s(zero)}",
                f"{lat / zero:.2f}×",
            )
        )
        targets.append(
            (
                f"wall at {a.latency_ms:g} ms ≤ 1.3× wall at 0 ms (SQLite)",
                f"{lat / zero:.2f}×",
                "1.3×",
                lat / zero <= 1.3,
            )
        )
    if "scale" in r:
        small, big = r["scale"][100_000], r["scale"][1_000_000]
        for n, s in r["scale"].items():
            rows.append(
                (
                    f"SQLite full load at {n:,} tasks, peak RSS",
                    f"{s['rss_mb']:.0f} MB",
                    f"{_n(s['estate']['replica_task_sessions'])} tasks, {_n(s['entities'])} entities, "
                    f"{_s(s['wall_s'])}, {s['entities'] / s['wall_s']:,.0f} entities/s",
                    f"{s['rss_mb'] / small['rss_mb']:.2f}× the 100k figure",
                )
            )
        targets.append(("peak RSS at 1M ≤ 300 MB", f"{big['rss_mb']:.0f} MB", "300 MB", big["rss_mb"] <= 300))
        targets.append(
            (
                "peak RSS at 1M ≤ 1.5× at 100k",
                f"{big['rss_mb'] / small['rss_mb']:.2f}×",
                "1.5×",
                big["rss_mb"] <= 1.5 * small["rss_mb"],
            )
        )

    out = [
        "# veeam-etl load benchmark: results",
        "",
        f"`{r['command']}` — the whole run took {r['bench_s'] / 60:.1f} min. Code measured: {r['revision']}.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in r["machine"].items()) + f"; load average "
        f"{r['load_before']:.1f} before, {r['load_after']:.1f} after (other work on the machine adds noise).",
        "",
        "## Figures",
        "",
        "| figure | value | floor / context | ratio |",
        "|---|---|---|---|",
    ]
    out += [f"| {f} | {v} | {fl} | {ra} |" for f, v, fl, ra in rows]
    out += ["", "## Targets", "", "| target | measured | limit | verdict |", "|---|---|---|---|"]
    out += [f"| {t} | {m} | {lim} | {_verdict(ok)} |" for t, m, lim, ok in targets]
    loads = [
        (f"{label} {mode}", r[key][mode])
        for key, label in (("sqlite", "SQLite"), ("pg", "PostgreSQL"))
        if key in r
        for mode in ("full", "incremental")
    ]
    splits = [_stages(full) for _, full in loads]
    out += [
        "",
        "## Where the time goes, per stage",
        "",
        "Main-thread rows add up to the wall time; `threads:` rows are work summed over all threads "
        "(the pool fetches, parses and transforms up to 2 × `--concurrency` pages ahead, with at most `--concurrency` requests in flight; the first page of each "
        "type is fetched by the main thread), so they overlap the main thread. In brackets: CPU seconds of "
        "the thread(s) that ran the stage; wall minus CPU is waiting (for the GIL, the disk, the network).",
        "",
        "| stage | " + " | ".join(name for name, _ in loads) + " |",
        "|---" * (len(loads) + 1) + "|",
    ]
    for stage in splits[0]:
        out.append(f"| {stage} | " + " | ".join(_cell(*s[stage]) for s in splits) + " |")
    out += [
        "",
        "## Requests of each run, by what they ask for",
        "",
        "| request | " + " | ".join(name for name, _ in loads) + " |",
        "|---" * (len(loads) + 1) + "|",
    ]
    kinds = sorted({k for _, full in loads for k in full["requests_by_kind"]})
    out += [
        f"| {k} | " + " | ".join(str(full["requests_by_kind"].get(k, 0)) for _, full in loads) + " |"
        for k in kinds
    ]
    prof = r["profile"]
    text = prof["profile"].split("Ordered by", 1)[-1]
    out += [
        "",
        "## Where the remaining time goes: cProfile of one SQLite full load (main thread)",
        "",
        f"A separate load under cProfile ({_s(prof['wall_s'])} with the profiler on). Only the main thread "
        "is profiled: it runs the page transactions; the pool threads that fetch and transform appear here "
        "only as waits.",
        "",
        "```",
        "Ordered by" + text.rstrip(),
        "```",
        "",
    ]
    return "\n".join(out)
