"""Readers never need write access: `status`, `report` and `verify` (without --repair) read a SQLite
warehouse in a directory they may not write, with no loader connected (only the file) and while one
is (committed rows still in the -wal file), and change nothing there.

Two real mechanisms, each a `python -m etl` process: the directory made read-only (chmod 555) for a
process that cannot override file permissions (root's CAP_DAC_OVERRIDE dropped before it starts, as
helpers.without_dac_override), and a read-only bind mount in a mount namespace of its own (skipped where this
machine allows no mount namespace)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from etl.simulator import Simulator, World
from helpers import cli, cli_env, without_dac_override

LIVE = "live-writer-source"  # a run row the open writer committed to its WAL, not to the file


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A warehouse loaded from a simulator (its directory, the simulator's URL while it serves)."""
    where = tmp_path_factory.mktemp("ro") / "warehouse"
    where.mkdir()
    with Simulator(World(seed=7, servers=1, jobs=2, vms_per_job=3, days=2)) as sim:
        done = cli("run", "--url", sim.url, "--user", "demo", "--db", f"sqlite:///{where}/w.db")
        assert done.returncode == 0, done.stderr
        yield where, sim


@contextmanager
def live_writer(path: Path):
    """A loader's connection held open: one committed transaction sits in the -wal file only."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_autocheckpoint=0")  # keep the commit in the WAL
        conn.execute(
            "INSERT INTO etl_runs (source, started_at, finished_at, status, mode, rows_inserted, rows_updated, "
            "parents_from_links, requests, retries, quarantined, foreign_links) VALUES "
            f"('{LIVE}', '2025-01-01 00:00:00', '2025-01-01 00:01:00', 'succeeded', 'full', 0, 0, 0, 0, 0, 0, 0)"
        )
        conn.commit()
        assert path.with_name(path.name + "-wal").stat().st_size > 0
        yield
    finally:
        conn.execute(f"DELETE FROM etl_runs WHERE source = '{LIVE}'")
        conn.commit()
        conn.close()


def _mount_namespaces() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = subprocess.run([unshare, "-m", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


def _read_only(mechanism: str, directory: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m etl ARGS` seeing `directory` read-only; `{dir}` in ARGS is where it sees it."""
    if mechanism == "chmod":
        directory.chmod(0o555)
        try:
            return subprocess.run(
                [sys.executable, "-m", "etl", *(a.replace("{dir}", str(directory)) for a in args)],
                capture_output=True,
                text=True,
                env=cli_env(),
                timeout=300,
                stdin=subprocess.DEVNULL,
                preexec_fn=without_dac_override,
            )
        finally:
            directory.chmod(0o755)
    mount = directory.with_name(directory.name + "-mnt")
    mount.mkdir(exist_ok=True)
    script = 'mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" && shift 2 && exec "$@"'
    command = [sys.executable, "-m", "etl", *(a.replace("{dir}", str(mount)) for a in args)]
    return subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            str(directory),
            str(mount),
            *command,
        ],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


MECHANISMS = [
    "chmod",
    pytest.param(
        "ro-mount",
        marks=pytest.mark.skipif(not _mount_namespaces(), reason="no mount namespace may be made here"),
    ),
]


@pytest.mark.parametrize("writer", ["no loader connected", "a loader connected"])
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_status_report_and_verify_read_a_warehouse_they_may_not_write(loaded, tmp_path, mechanism, writer):
    directory, sim = loaded
    before = sorted(p.name for p in directory.iterdir())
    db = "sqlite:///{dir}/w.db"
    with live_writer(directory / "w.db") if writer == "a loader connected" else _nothing():
        files = sorted(p.name for p in directory.iterdir())
        status = _read_only(mechanism, directory, "status", "--db", db)
        table = _read_only(mechanism, directory, "report", "--db", db)
        page = _read_only(
            mechanism, directory, "report", "--db", db, "--format", "html", "--out", str(tmp_path / "r.html")
        )
        verify = _read_only(mechanism, directory, "verify", "--db", db, "--url", sim.url, "--user", "demo")
        after = sorted(p.name for p in directory.iterdir())
    for done in (status, table, page):
        assert done.returncode == 0, done.stderr
    for done in (status, table, page, verify):
        assert "Traceback" not in done.stderr and "readonly" not in done.stderr, done.stderr
    assert "succeeded" in status.stdout and "Backup" in table.stdout
    assert (LIVE in status.stdout) == (writer == "a loader connected"), status.stdout  # committed, in the WAL
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    # verify compared EM's counts with the warehouse's (whatever they are: 1 when some differ)
    assert verify.returncode in (0, 1) and "windows differ" in verify.stdout, verify.stderr
    assert after == files  # the readers created nothing beside the file
    assert sorted(p.name for p in directory.iterdir()) == before


@contextmanager
def _nothing():
    yield


def test_run_still_needs_a_writable_directory(loaded):
    directory, sim = loaded
    done = _read_only(
        "chmod", directory, "run", "--url", sim.url, "--user", "demo", "--db", "sqlite:///{dir}/w.db"
    )
    assert done.returncode == 2 and f"directory {directory} is read-only" in done.stderr, done.stderr
    assert os.access(directory, os.W_OK)  # given back
