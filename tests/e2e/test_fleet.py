"""Many Enterprise Managers, one warehouse: `veeam-etl run --config` against simulators on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import UTC, datetime

from sqlalchemy import insert, select

from etl import db, schema
from etl.simulator import Faults
from etl.simulator import fleet as sim_fleet
from helpers import assert_equal_to_truth, cli, cli_env, dump

SIZE = {"servers": 2, "jobs": 3, "vms_per_job": 4, "days": 3}


def _estate(path, good, down, badpw) -> None:
    # the down EM gets few attempts, so the test does not wait out the full retry budget
    path.write_text(
        "[defaults]\n"
        'user = "demo"\n'
        'password_env = "FLEET_PW"\n'
        "page_size = 40\n"
        "\n[[em]]\n"
        'name = "em-good"\n'
        f'url = "{good.url}"\n'
        "\n[[em]]\n"
        'name = "em-down"\n'
        f'url = "{down.url}"\n'
        "retries = 2\n"
        "\n[[em]]\n"
        'name = "em-badpw"\n'
        f'url = "{badpw.url}"\n'
        'password_env = "FLEET_BADPW_PW"\n'
    )


def _rows(stdout: str) -> dict[str, list[str]]:
    """The summary table's rows by EM name (and "total"), split into words."""
    return {line.split()[0]: line.split() for line in stdout.splitlines()[1:]}


def rows_line(stdout: str, name: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith(name))


def test_two_failures_do_not_stop_the_good_em_and_a_rerun_converges(db_url, tmp_path):
    faults = [None, Faults(down=True), None]
    with sim_fleet.serving(3, seed=41, faults=faults, **SIZE) as (good, down, badpw):
        badpw.password = "rotated"  # the account's password changed on that EM only
        estate = tmp_path / "estate.toml"
        _estate(estate, good, down, badpw)

        first = cli("run", "--config", str(estate), "--db", db_url, FLEET_PW="demo", FLEET_BADPW_PW="demo")
        assert first.returncode == 1, first.stdout + first.stderr
        rows = _rows(first.stdout)
        assert rows["em-good"][1] == "succeeded"
        assert rows["em-down"][1] == "failed" and "HTTP 503" in first.stdout
        assert rows["em-badpw"][1] == "failed"
        assert "refused the logon of user 'demo' (HTTP 401)" in first.stdout
        assert "3 EMs: 1 succeeded, 2 failed" in rows_line(first.stdout, "total")
        # EMs side by side: the file's parallel (4) for 3 EMs is 3 on PostgreSQL; SQLite has one writer
        at_a_time = "1 at a time" if db_url.startswith("sqlite") else "3 at a time"
        assert rows_line(first.stdout, "total").endswith(at_a_time), first.stdout
        eng = db.engine(db_url)
        assert_equal_to_truth(eng, good.truth(), source="em-good")
        assert all(not rows for rows in dump(eng, source="em-down").values())
        assert all(not rows for rows in dump(eng, source="em-badpw").values())
        assert "rotated" not in first.stdout + first.stderr

        down.faults.down = False
        again = cli("run", "--config", str(estate), "--db", db_url, FLEET_PW="demo", FLEET_BADPW_PW="rotated")
        assert again.returncode == 0, again.stdout + again.stderr
        assert [r[1] for name, r in _rows(again.stdout).items() if name != "total"] == ["succeeded"] * 3
        for name, sim in (("em-good", good), ("em-down", down), ("em-badpw", badpw)):
            assert_equal_to_truth(eng, sim.truth(), source=name)
        with eng.connect() as conn:
            runs = conn.execute(
                select(schema.etl_runs.c.source, schema.etl_runs.c.status, schema.etl_runs.c.mode).order_by(
                    schema.etl_runs.c.id
                )
            ).all()
        assert sorted(runs[:3]) == [
            ("em-badpw", "failed", "full"),
            ("em-down", "failed", "full"),
            ("em-good", "succeeded", "full"),
        ]
        assert sorted(runs[3:]) == [
            ("em-badpw", "succeeded", "full"),
            ("em-down", "succeeded", "full"),
            ("em-good", "succeeded", "incremental"),
        ]

        status = cli("status", "--db", db_url)
        assert status.returncode == 0, status.stderr
        per_source = status.stdout.split("recent runs:")[0]
        for name in ("em-good", "em-down", "em-badpw"):
            line = next(line for line in per_source.splitlines() if line.strip().startswith(name))
            assert " succeeded " in line, line
        eng.dispose()


def test_only_selects_ems_and_a_held_lock_alone_exits_75(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'w.db'}"
    with sim_fleet.serving(2, seed=51, **SIZE) as (a, b):
        estate = tmp_path / "estate.toml"
        estate.write_text(sim_fleet.estate_toml([a, b], password_env="FLEET_PW"))
        only = cli("run", "--config", str(estate), "--only", "em2", "--db", db_url, FLEET_PW="demo")
        assert only.returncode == 0, only.stderr
        assert set(_rows(only.stdout)) == {"em2", "total"}
        eng = db.engine(db_url)
        assert_equal_to_truth(eng, b.truth(), source="em2")
        assert all(not rows for rows in dump(eng, source="em1").values())

        now = datetime.now(UTC)
        with eng.begin() as conn:  # a live run of em1 on another host
            conn.execute(
                insert(schema.etl_locks).values(
                    source="em1", run_id=None, host="other-host", pid=4242, acquired_at=now, heartbeat_at=now
                )
            )
        locked = cli("run", "--config", str(estate), "--db", db_url, FLEET_PW="demo")
        assert locked.returncode == 75, locked.stdout + locked.stderr
        rows = _rows(locked.stdout)
        assert rows["em1"][1] == "locked" and "another run holds the lock for em1" in locked.stdout
        assert rows["em2"][1] == "succeeded"
        eng.dispose()


def test_an_em_whose_secret_is_missing_fails_alone(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'w.db'}"
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with sim_fleet.serving(1, seed=61, **SIZE) as (sim,):
        estate = tmp_path / "estate.toml"
        estate.write_text(
            '[defaults]\nuser = "demo"\npassword_env = "FLEET_PW"\n'
            f'[[em]]\nname = "ok"\nurl = "{sim.url}"\n'
            f'[[em]]\nname = "nosecret"\nurl = "{sim.url}"\npassword_file = "missing-secret"\n'
            f'[[em]]\nname = "closed"\nurl = "http://127.0.0.1:{port}/api"\nretries = 1\n'
        )
        done = cli("run", "--config", str(estate), "--db", db_url, FLEET_PW="demo")
        assert done.returncode == 1, done.stdout + done.stderr
        rows = _rows(done.stdout)
        assert (
            rows["ok"][1] == "succeeded" and rows["nosecret"][1] == "failed" and rows["closed"][1] == "failed"
        )
        assert f"cannot read password_file {tmp_path / 'missing-secret'}" in done.stdout
        assert "Connection refused" in done.stdout or "ConnectError" in done.stdout
        assert_equal_to_truth(db.engine(db_url), sim.truth(), source="ok")


def test_simulate_serves_several_ems(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl", "simulate", "--ems", "3", "--port", "0", "--jobs", "2", "--days", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
    )
    try:
        urls = [proc.stdout.readline().split(" at ")[1].split()[0] for _ in range(3)]
        assert len(set(urls)) == 3
        estate = tmp_path / "estate.toml"
        estate.write_text(
            '[defaults]\nuser = "demo"\npassword_env = "FLEET_PW"\n'
            + "".join(f'[[em]]\nname = "sim{i}"\nurl = "{url}"\n' for i, url in enumerate(urls))
        )
        db_url = f"sqlite:///{tmp_path / 'w.db'}"
        done = cli("run", "--config", str(estate), "--db", db_url, FLEET_PW="demo")
        assert done.returncode == 0, done.stdout + done.stderr
        eng = db.engine(db_url)
        servers = [dump(eng, source=f"sim{i}")["backup_servers"] for i in range(3)]
        assert all(servers) and not set(servers[0]) & set(servers[1])  # three different estates
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_restarted_simulate_serves_the_same_history():
    """`veeam-etl simulate` anchors its estates at today's UTC midnight and advances them to the start
    of the hour: started again later in the hour (a restart), it serves the same entities with the
    same instants, not a history shifted by the gap."""
    from datetime import timedelta

    from etl.demo import start_simulators

    first_start = datetime(2025, 3, 4, 10, 5, 17, tzinfo=UTC)
    restart = first_start + timedelta(minutes=41)
    truths = []
    for now in (first_start, restart):
        sims = start_simulators(now, 2, seed=3, servers=1, jobs=2, vms_per_job=2, days=2)
        try:
            truths.append([sim.world.truth("http://em01:9399") for sim in sims])
        finally:
            sim_fleet.stop(sims)
    assert truths[0] == truths[1]
    assert truths[0][0]["replica_job_sessions"]  # an estate, not two empty ones
