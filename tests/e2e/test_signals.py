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
