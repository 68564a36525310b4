"""SIGTERM (what systemd and Kubernetes send) and SIGINT end a run like Ctrl-C: the batch in flight
is rolled back, the run row is recorded failed with the reason, the lock is released, the process
says so in one line and exits 128 + the signal; the next run converges to the source."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from etl import db, schema
from etl.simulator import Faults, Simulator, World
from etl.simulator import fleet as sim_fleet
from helpers import assert_equal_to_truth, cli, cli_env


def _run_args(sim: Simulator, db_url: str) -> list[str]:
    return [
        "run",
        "--url",
        sim.url,
        "--user",
        "demo",
        "--db",
        db_url,
        "--page-size",
        "25",
        "--batch-rows",
        "25",
    ]


def _wait_for_committed_rows(eng, proc: subprocess.Popen, deadline_s: float = 120) -> int:
    """The id of the running run once some of its task sessions are committed: the long query, read by
    reader processes, is under way (polls; the simulator answers slowly)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and proc.poll() is None:
        try:
            with eng.connect() as conn:
                run_id = conn.scalar(
                    select(schema.etl_runs.c.id).where(schema.etl_runs.c.status == "running")
                )
                rows = conn.scalar(select(func.count()).select_from(schema.replica_task_sessions))
            if run_id is not None and rows:
                return run_id
        except SQLAlchemyError:
            pass  # the first run is still creating the tables
        time.sleep(0.05)
    raise AssertionError(f"the run never committed rows while running (exit {proc.poll()})")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_load_is_recorded_and_the_rerun_is_exact(db_url, signum, code):
    world = World(seed=21, servers=2, jobs=5, vms_per_job=8, days=5)  # 16+ pages of tasks
    name = signal.Signals(signum).name
    eng = db.engine(db_url)
    with Simulator(world, faults=Faults(seed=21, slow=1.0, slow_seconds=0.25)) as sim:
        proc = subprocess.Popen(
            [sys.executable, "-m", "etl", *_run_args(sim, db_url)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=cli_env(),
        )
        try:
            run_id = _wait_for_committed_rows(eng, proc)
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == code, err
        assert "Traceback" not in err, err
        assert err.splitlines()[-1] == f"veeam-etl: interrupted by {name}", err
        assert "succeeded" not in out
        with eng.connect() as conn:
            run = conn.execute(select(schema.etl_runs).where(schema.etl_runs.c.id == run_id)).mappings().one()
            locks = conn.scalar(select(func.count()).select_from(schema.etl_locks))
        assert (run["status"], run["error"]) == ("failed", f"interrupted by {name}")
        assert run["finished_at"] is not None and locks == 0
        rerun = cli(*_run_args(sim, db_url))
        assert rerun.returncode == 0, rerun.stderr
        assert_equal_to_truth(eng, world.truth())
    eng.dispose()


# --- a fleet run (`run --config`): every EM's run stops the same way ---------------------------------


def _fleet(tmp_path, sims) -> list[str]:
    estate = tmp_path / "estate.toml"
    text = sim_fleet.estate_toml(sims)  # small pages and batches: many commits to stop between
    estate.write_text(text.replace("[defaults]\n", "[defaults]\npage_size = 25\nbatch_rows = 25\n", 1))
    return ["run", "--config", str(estate), "--parallel", "2"]


def _wait_for_fleet_rows(eng, proc: subprocess.Popen, loading: int, deadline_s: float = 120) -> None:
    """Until `loading` runs are `running` with task sessions committed (both EMs on PostgreSQL; one
    at a time on SQLite, which has one writer)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and proc.poll() is None:
        try:
            with eng.connect() as conn:
                sources = set(
                    conn.scalars(
                        select(schema.etl_runs.c.source).where(schema.etl_runs.c.status == "running")
                    )
                )
                committed = set(conn.scalars(select(schema.replica_task_sessions.c.source).distinct()))
            if len(sources & committed) >= loading:
                return
        except SQLAlchemyError:
            pass  # the tables are being created
        time.sleep(0.05)
    raise AssertionError(f"the fleet never had {loading} runs loading (exit {proc.poll()})")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_a_fleet_run_cleanly_every_time(db_url, tmp_path, signum, code):
    """Five tries each: every EM's run is recorded failed with the signal's name, no run stays
    `running`, no lock stays held, stderr ends in the one line and holds no traceback."""
    name = signal.Signals(signum).name
    loading = 1 if db_url.startswith("sqlite") else 2
    eng = db.engine(db_url)
    slow = [Faults(seed=s, slow=1.0, slow_seconds=0.1) for s in (31, 32)]
    with sim_fleet.serving(2, seed=31, servers=2, jobs=5, vms_per_job=8, days=5, faults=slow) as sims:
        args = _fleet(tmp_path, sims)
        for attempt in range(5):
            with eng.begin() as conn:  # each try starts from an empty warehouse: a full load to stop
                for table in reversed(schema.metadata.sorted_tables):
                    if table.name in conn.dialect.get_table_names(conn):
                        conn.execute(table.delete())
            proc = subprocess.Popen(
                [sys.executable, "-m", "etl", *args, "--db", db_url],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                env=cli_env(),
            )
            try:
                _wait_for_fleet_rows(eng, proc, loading)
                proc.send_signal(signum)
                out, err = proc.communicate(timeout=120)
            finally:
                if proc.poll() is None:
                    proc.kill()
            where = f"try {attempt + 1}: {err}"
            assert proc.returncode == code, where
            assert "Traceback" not in err and "RuntimeError" not in err, where
            assert err.splitlines()[-1] == f"veeam-etl: interrupted by {name}", where
            assert f"interrupted by {name}" in out.splitlines()[-1], out
            with eng.connect() as conn:
                runs = conn.execute(
                    select(schema.etl_runs.c.source, schema.etl_runs.c.status, schema.etl_runs.c.error)
                ).all()
                locks = conn.scalar(select(func.count()).select_from(schema.etl_locks))
            assert locks == 0, where
            assert "running" not in {status for _, status, _ in runs}, runs
            stopped = [source for source, status, error in runs if error == f"interrupted by {name}"]
            assert len(stopped) >= loading and all(s == "failed" for _, s, e in runs if e), runs
    eng.dispose()


def test_a_second_signal_ends_a_fleet_run_at_once(tmp_path):
    """While the first signal's runs wind down (slow answers), a second one ends the process; the next
    run takes the locks over (same host, process gone) and loads."""
    db_url = f"sqlite:///{tmp_path / 'w.db'}"
    eng = db.engine(db_url)
    slow = [Faults(seed=s, slow=1.0, slow_seconds=0.1) for s in (41, 42)]
    with sim_fleet.serving(2, seed=41, servers=1, jobs=4, vms_per_job=8, days=5, faults=slow) as sims:
        args = [*_fleet(tmp_path, sims), "--db", db_url]
        proc = subprocess.Popen(
            [sys.executable, "-m", "etl", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=cli_env(),
        )
        try:
            _wait_for_fleet_rows(eng, proc, 1)
            for fault in slow:
                fault.slow_seconds = 5.0  # the requests in flight now keep the first stop waiting
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGTERM  # ended by the signal itself, at once
        for fault in slow:
            fault.rates["slow"] = 0.0
        rerun = cli(*args)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        with eng.connect() as conn:
            statuses = conn.execute(select(schema.etl_runs.c.status, schema.etl_runs.c.error)).all()
        assert ("failed", "abandoned: the process ended without finishing") in statuses, statuses
    eng.dispose()
