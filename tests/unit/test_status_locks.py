"""etl.status: what it says about a lock whose holder was killed outright (SIGKILL, the OOM killer)."""

from __future__ import annotations

import subprocess
import sys

from etl import db, runs, status


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_status_says_when_the_holder_of_a_lock_is_gone(tmp_path):
    eng = db.engine(f"sqlite:///{tmp_path / 'w.db'}")
    db.ensure_current(eng)
    runs.acquire_lock(eng, "em01")
    run_id = runs.start_run(eng, "em01", "full")
    live = status.render(status.collect(eng))
    assert f"(run {run_id}, heartbeat" in live and "process is gone" not in live  # this process holds it

    with eng.begin() as conn:  # as a run killed by SIGKILL leaves it: its process gone, the lock kept
        conn.execute(runs.etl_locks.update().values(pid=_dead_pid()))
    data = status.collect(eng)
    assert [lock["process_gone"] for lock in data["locks"]] == [True]
    assert (
        f"that process is gone (killed?); the next run takes the lock over and records run {run_id} failed"
        in (status.render(data))
    )
    eng.dispose()
