"""etl.workers: a process pool with the shape of an Executor; workers hand back results or the call's
own error, a dead worker is a clear error, and workers never outlive the loading process."""

import os
import signal
import subprocess
import sys
import time

import pytest

from etl import logs, registry, transform
from etl.errors import ParseError, WorkerError
from etl.workers import ProcessPool


def test_submit_and_map_run_in_worker_processes():
    pool = ProcessPool(2)
    try:
        assert list(pool.map(abs, [-1, -2, 3])) == [1, 2, 3]
        pids = {pool.submit(os.getpid).result() for _ in range(6)}
        assert pids <= set(pool.pids) and os.getpid() not in pids
    finally:
        pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(abs, 1)


def test_a_worker_hands_back_the_error_of_a_call_and_a_dead_worker_is_a_clear_error():
    pool = ProcessPool(1)
    try:
        with pytest.raises(ParseError, match="http://em/api/q"):
            pool.submit(
                transform.read_page, b"<QueryResult><Entities>", registry.BACKUP_SERVER, "http://em/api/q"
            ).result()
        pool._workers[0].proc.kill()
        pool._workers[0].proc.wait()
        with pytest.raises(WorkerError, match="worker process"):
            pool.submit(abs, 1).result()
    finally:
        pool.shutdown()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_workers_end_when_the_loading_process_is_killed():
    loader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom etl.workers import ProcessPool\n"
            "p = ProcessPool(2)\nprint(*p.pids, flush=True)\ntime.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    pids = [int(p) for p in loader.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    os.kill(loader.pid, signal.SIGKILL)
    loader.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)  # their input closed with the loader: they went too


def test_workers_ignore_sigterm_and_leave_quietly_when_the_loader_is_gone():
    """systemd and Kubernetes signal every process of a unit: the loader ends the run, the workers
    end at the end of their input, and none prints a traceback."""
    loader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, signal, sys, time\nfrom etl.workers import ProcessPool\n"
            "p = ProcessPool(1)\np.submit(abs, 1).result()\nprint(*p.pids, flush=True)\nsys.stdin.readline()\n"
            "os.kill(p.pids[0], signal.SIGTERM)\ntime.sleep(0.3)\n"
            "print(p.submit(abs, -5).result(), flush=True)\nos._exit(0)",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid = int(loader.stdout.readline())
    out, err = loader.communicate("go\n", timeout=30)
    assert out.strip() == "5"  # SIGTERM did not end the worker
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid) and "Traceback" not in err


def test_a_variable_holding_a_registered_secret_does_not_reach_a_worker(monkeypatch):
    """Workers read pages, never EM: the password (VEEAM_EM_PASSWORD, an estate's password_env) is
    not in their environment; other variables are."""
    monkeypatch.setattr(logs, "_SECRETS", set())
    monkeypatch.setenv("VEEAM_EM_PASSWORD", "pw-worker-env-1")
    monkeypatch.setenv("EM02_PASSWORD", "pw-worker-env-2")
    monkeypatch.setenv("VEEAM_ETL_UNRELATED", "kept")
    logs.secret("pw-worker-env-1")
    logs.secret("pw-worker-env-2")
    pool = ProcessPool(1)
    try:
        seen = [pool.submit(os.getenv, name).result() for name in ("VEEAM_EM_PASSWORD", "EM02_PASSWORD")]
        assert seen == [None, None]
        assert pool.submit(os.getenv, "VEEAM_ETL_UNRELATED").result() == "kept"
    finally:
        pool.shutdown()
