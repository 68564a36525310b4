"""SIGKILL at any moment leaves the warehouse consistent, and the next run converges to the source.

The run is a real `veeam-etl run` process; a wrapper patches one function so that the process
SIGKILLs itself at a chosen point (before a commit, inside an open transaction, after a commit,
before the watermarks, before the lock is released). Then a plain rerun must equal the truth.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from etl import db, schema
from etl.simulator import Simulator, World
from helpers import assert_equal_to_truth, cli_env

KILLER = r"""
import os, signal, sys
from etl import load, runs, store
point, n = sys.argv[1], int(sys.argv[2])
calls = [0]
def hit():
    calls[0] += 1
    if calls[0] == n:
        os.kill(os.getpid(), signal.SIGKILL)
def wrap(owner, name, after, table=None):
    original = getattr(owner, name)
    def patched(*args, **kwargs):
        counts = table is None or args[1].table == table  # Loader.upsert(self, rows): only this table
        if counts and not after:
            hit()
        result = original(*args, **kwargs)
        if counts and after:
            hit()
        return result
    setattr(owner, name, patched)
targets = {
    "before-commit": (runs, "heartbeat", False),       # last statement inside a page's transaction
    "inside-transaction": (load.Loader, "upsert", True),  # rows written, transaction still open
    "after-commit": (store.Store, "_transaction", True),  # a transaction committed, the next not begun
    "before-watermarks": (runs, "advance_watermarks", False),
    "before-unlock": (runs, "release_lock", False),    # run finished, lock row left behind
    # the backup side: rows of a page of backup task sessions (or files) written, not committed
    "inside-backup-tasks": (load.Loader, "upsert", True, "backup_task_sessions"),
    "inside-backup-files": (load.Loader, "upsert", True, "backup_files"),
}
wrap(*targets[point])
from etl.cli import main
sys.argv = ["veeam-etl", *sys.argv[3:]]
main()
"""

MATRIX = [
    ("before-commit", 3),
    ("inside-transaction", 2),
    ("inside-transaction", 5),
    ("after-commit", 1),
    ("after-commit", 4),
    ("inside-backup-files", 1),
    ("inside-backup-tasks", 2),
    ("before-watermarks", 1),
    ("before-unlock", 1),
]


def _run(sim, db_url, *killer):
    args = [
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
    cmd = [sys.executable, "-c", KILLER, *killer, *args] if killer else [sys.executable, "-m", "etl", *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=cli_env(), timeout=300, stdin=subprocess.DEVNULL
    )


def _consistent(eng) -> None:
    with eng.connect() as conn:
        if eng.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        orphans = conn.scalar(
            select(func.count())
            .select_from(schema.replica_task_sessions)
            .where(
                ~schema.replica_task_sessions.c.job_session_uid.in_(select(schema.replica_job_sessions.c.uid))
            )
        )
        assert orphans == 0


@pytest.mark.parametrize(("point", "nth"), MATRIX, ids=[f"{p}-{n}" for p, n in MATRIX])
def test_kill_during_incremental_then_rerun_converges(db_url, point, nth):
    world = World(seed=9, servers=2, jobs=4, vms_per_job=6, days=4, runs_per_day=3)
    with Simulator(world) as sim:
        assert _run(sim, db_url).returncode == 0
        world.advance(timedelta(hours=12))
        killed = _run(sim, db_url, point, str(nth))
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        eng = db.engine(db_url)
        _consistent(eng)
        world.advance(timedelta(hours=1))
        rerun = _run(sim, db_url)
        assert rerun.returncode == 0, rerun.stderr
        assert_equal_to_truth(eng, world.truth())
        _consistent(eng)
        with eng.connect() as conn:
            statuses = (
                conn.execute(select(schema.etl_runs.c.status).order_by(schema.etl_runs.c.id)).scalars().all()
            )
        # the killed run is marked failed when its stale lock is taken over (or stayed 'succeeded' if it
        # was killed after finishing); never left 'running'
        assert statuses[0] == "succeeded" and statuses[-1] == "succeeded" and "running" not in statuses
        eng.dispose()


@pytest.mark.parametrize("point,nth", [("inside-transaction", 4), ("inside-backup-tasks", 3)])
def test_kill_during_first_full_load(tmp_path, point, nth):
    world = World(seed=10, servers=2, jobs=4, vms_per_job=6, days=4)
    url = f"sqlite:///{tmp_path}/w.db"
    with Simulator(world) as sim:
        assert _run(sim, url, point, str(nth)).returncode == -signal.SIGKILL
        eng = db.engine(url)
        _consistent(eng)
        assert _run(sim, url).returncode == 0
        assert_equal_to_truth(eng, world.truth())
        eng.dispose()
