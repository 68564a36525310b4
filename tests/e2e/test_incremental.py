"""Scheduled loads: incremental at T1 → T2, unfinished sessions re-read, watermarks, lock, several EMs."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import inspect, select

from etl import db, pipeline, registry, runs, schema
from etl.errors import ConfigError, LockHeld, SourceError
from etl.simulator import Simulator, World
from helpers import assert_equal_to_truth, cli, dump


def small_world(seed: int = 11, days: int = 6) -> World:
    return World(seed=seed, servers=2, jobs=5, vms_per_job=6, days=days, runs_per_day=3)


def test_incremental_after_a_day_equals_truth_with_few_requests(db_url):
    world = small_world(days=30)
    with Simulator(world) as sim:
        eng = db.engine(db_url)
        full = pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=50))
        assert full.mode == "full"
        with eng.connect() as conn:
            running = runs.unfinished(conn, full.source, schema.replica_task_sessions, "Completed")
        assert running, "the estate should have sessions running at T1"
        world.advance(timedelta(hours=24))
        inc = pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=50))
        assert inc.mode == "incremental"
        assert_equal_to_truth(eng, world.truth())
        assert inc.requests < full.requests / 5
        with eng.connect() as conn:
            for table in (schema.replica_job_sessions, schema.replica_task_sessions):
                finished = conn.execute(
                    select(table.c.creation_time_utc, table.c.end_time_utc).where(
                        table.c.state.in_(["Stopped", "Completed"])
                    )
                ).all()
                assert finished and all(end is not None and end >= start for start, end in finished)
            marks = runs.watermarks(conn, inc.source)
        assert set(marks) == {t.name for t in registry.incremental()}
        eng.dispose()


def test_sessions_running_before_the_lookback_are_reread(tmp_path):
    world = small_world(5)
    with Simulator(world) as sim:
        eng = db.engine(f"sqlite:///{tmp_path}/w.db")
        pipeline.run(eng, sim.url, "demo", "demo")
        world.advance(timedelta(hours=30))
        # a lookback of zero: the sessions running at T1 were created before the window; the query
        # for sessions ended since the window start (or still running) must finish them
        inc = pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(lookback=timedelta(0)))
        assert_equal_to_truth(eng, world.truth())
        assert inc.tables["replica_task_sessions"]["updated"] > 0
        eng.dispose()


def test_full_refresh_and_since(tmp_path):
    world = small_world(2)
    with Simulator(world) as sim:
        eng = db.engine(f"sqlite:///{tmp_path}/w.db")
        pipeline.run(eng, sim.url, "demo", "demo")
        again = pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(full_refresh=True))
        assert again.mode == "full" and sum(c["inserted"] + c["updated"] for c in again.tables.values()) == 0
        since = pipeline.run(
            eng, sim.url, "demo", "demo", options=pipeline.Options(since=world.now - timedelta(days=2))
        )
        assert since.mode == "since"
        assert_equal_to_truth(eng, world.truth())
        eng.dispose()


class Failing(httpx.HTTPTransport):
    """A real transport that starts failing after `ok` requests (EM going away mid-run)."""

    def __init__(self, ok: int):
        super().__init__()
        self.left = ok

    def handle_request(self, request):
        self.left -= 1
        if self.left < 0:
            raise httpx.ConnectError("connection refused", request=request)
        return super().handle_request(request)


def test_failed_run_keeps_watermarks_and_the_rerun_converges(db_url):
    world = small_world(4)
    with Simulator(world) as sim:
        eng = db.engine(db_url)
        pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=40))
        with eng.connect() as conn:
            before = runs.watermarks(conn, pipeline.source_name(sim.url))
        world.advance(timedelta(hours=24))
        fast = pipeline.Options(page_size=20, retry=pipeline.RetryPolicy(attempts=2, base=0.01, cap=0.01))
        with pytest.raises(SourceError):
            pipeline.run(eng, sim.url, "demo", "demo", options=fast, transport=Failing(ok=6))
        with eng.connect() as conn:
            assert runs.watermarks(conn, pipeline.source_name(sim.url)) == before
            last = (
                conn.execute(select(schema.etl_runs).order_by(schema.etl_runs.c.id.desc())).mappings().first()
            )
        assert last["status"] == "failed" and "ConnectError" in last["error"]
        pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=20))
        assert_equal_to_truth(eng, world.truth())
        eng.dispose()


def test_second_run_exits_75_while_the_lock_is_held_and_stale_locks_are_taken_over(db_url):
    world = small_world(6)
    with Simulator(world) as sim:
        eng = db.engine(db_url)
        db.migrate(eng)
        source = pipeline.source_name(sim.url)
        runs.acquire_lock(eng, source)  # held by this (live) test process
        done = cli("run", "--url", sim.url, "--user", "demo", "--db", db_url)
        assert done.returncode == 75, done.stderr
        assert "another run holds the lock" in done.stderr
        with pytest.raises(LockHeld):
            pipeline.run(eng, sim.url, "demo", "demo")
        runs.release_lock(eng, source)
        # a lock left by a process that no longer exists is taken over
        dead = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
        )
        with eng.begin() as conn:
            conn.execute(
                schema.etl_locks.insert().values(
                    source=source,
                    run_id=None,
                    host=runs.HOST,
                    pid=int(dead.stdout),
                    acquired_at=schema.now_utc(),
                    heartbeat_at=schema.now_utc(),
                )
            )
        done = cli("run", "--url", sim.url, "--user", "demo", "--db", db_url)
        assert done.returncode == 0, done.stderr
        assert f"took over the stale lock for {source}: pid {int(dead.stdout)}" in done.stderr
        assert_equal_to_truth(eng, world.truth())
        eng.dispose()


def test_two_enterprise_managers_feed_one_warehouse(db_url):
    a, b = small_world(21), small_world(22)
    with Simulator(a) as sim_a, Simulator(b) as sim_b:
        eng = db.engine(db_url)
        pipeline.run(eng, sim_a.url, "demo", "demo")
        pipeline.run(eng, sim_b.url, "demo", "demo")
        truth = {t: {**a.truth()[t], **b.truth()[t]} for t in a.truth()}
        assert_equal_to_truth(eng, truth)
        with eng.connect() as conn:
            sources = set(conn.scalars(select(schema.etl_watermarks.c.source)))
            inc = pipeline.run(eng, sim_a.url, "demo", "demo")
        assert sources == {pipeline.source_name(sim_a.url), pipeline.source_name(sim_b.url)}
        assert inc.mode == "incremental"
        assert dump(eng)["replica_job_sessions"].keys() == truth["replica_job_sessions"].keys()
        eng.dispose()


def test_status_command(tmp_path):
    with Simulator(small_world(1)) as sim:
        url = f"sqlite:///{tmp_path}/w.db"
        assert cli("run", "--url", sim.url, "--user", "demo", "--db", url).returncode == 0
        out = cli("status", "--db", url)
    assert out.returncode == 0
    assert "succeeded" in out.stdout and "ReplicaTaskSession" in out.stdout


def test_json_logs(tmp_path):
    import json

    with Simulator(small_world(1)) as sim:
        done = cli(
            "--log-format",
            "json",
            "run",
            "--url",
            sim.url,
            "--user",
            "demo",
            "--db",
            f"sqlite:///{tmp_path}/w.db",
        )
    assert done.returncode == 0
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(entry) for entry in lines)


def test_no_change_incremental_is_a_handful_of_requests_and_uid_fallback_finishes_stragglers(db_url):
    world = small_world(8, days=10)
    with Simulator(world) as sim:
        eng = db.engine(db_url)
        pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=50))
        nochange = pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=50))
        # root, logon, logoff + one query per type (inventory whole; the rest created, ended or
        # unfinished since each backup server's window) + at most two rereads of stragglers
        assert nochange.requests <= 3 + len(registry.TYPES) + 2
        # a session we last saw running, which EM now reports as ended long ago (collected late)
        tasks = schema.replica_task_sessions
        with eng.begin() as conn:
            old = conn.execute(
                select(tasks.c.uid, tasks.c.job_session_uid)
                .where(tasks.c.state == "Completed")
                .order_by(tasks.c.creation_time_utc)
                .limit(1)
            ).one()
            conn.execute(
                tasks.update()
                .where(tasks.c.uid == old.uid)
                .values(end_time_utc=None, state="InProgress", result="None")
            )
        fixed = pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=50))
        assert fixed.tables["replica_task_sessions"]["updated"] == 1
        assert_equal_to_truth(eng, world.truth())
        eng.dispose()


def test_a_url_that_is_not_an_api_url_is_refused_before_anything_is_recorded(tmp_path):
    eng = db.engine(f"sqlite:///{tmp_path}/w.db")
    with pytest.raises(ConfigError, match="scheme ftp:// is not supported"):
        pipeline.run(eng, "ftp://em01/api", "demo", "demo")
    assert inspect(eng).get_table_names() == []  # nothing touched, nothing recorded
    eng.dispose()


def test_progress_line_on_a_terminal_only(tmp_path):
    import pty

    with Simulator(small_world(3)) as sim:
        primary, secondary = pty.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith("VEEAM_")}
        env["VEEAM_EM_PASSWORD"] = "demo"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "etl",
                "run",
                "--url",
                sim.url,
                "--user",
                "demo",
                "--db",
                f"sqlite:///{tmp_path}/tty.db",
            ],
            stdout=subprocess.PIPE,
            stderr=secondary,
            stdin=subprocess.DEVNULL,
            env=env,
            timeout=300,
        )
        os.close(secondary)
        chunks = []
        while True:
            try:
                data = os.read(primary, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        os.close(primary)
        on_tty = b"".join(chunks).decode(errors="replace")
        piped = cli("run", "--url", sim.url, "--user", "demo", "--db", f"sqlite:///{tmp_path}/pipe.db")
    assert done.returncode == 0 and piped.returncode == 0
    assert "rows written" in on_tty and "\r" in on_tty
    assert "rows written" not in piped.stderr
