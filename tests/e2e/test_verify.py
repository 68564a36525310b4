"""`veeam-etl verify`: EM's counts per backup server and type against the warehouse's, and --repair
reloading exactly the windows that differ."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select

from etl import db, pipeline, schema
from etl.simulator import Simulator, World
from helpers import assert_equal_to_truth, cli


def test_verify_finds_what_the_warehouse_lost_and_repair_reloads_exactly_that(db_url):
    now = datetime.now(UTC).replace(microsecond=0)  # the window ends where the last run started
    world = World(seed=4, servers=2, jobs=2, vms_per_job=3, days=3, backup_jobs=2, now=now, running_share=0)
    with Simulator(world) as sim:
        eng = db.engine(db_url)
        pipeline.run(eng, sim.url, "demo", "demo")
        quiet = cli("verify", "--url", sim.url, "--user", "demo", "--db", db_url)
        assert quiet.returncode == 0, quiet.stdout + quiet.stderr
        assert "0 of " in quiet.stdout and "windows differ" in quiet.stdout

        tasks = schema.backup_task_sessions
        with eng.begin() as conn:  # the warehouse loses one server's task sessions of the last day
            server, lost = conn.execute(
                select(tasks.c.backup_server_uid, tasks.c.uid)
                .order_by(tasks.c.creation_time_utc.desc())
                .limit(1)
            ).one()
            gone = conn.execute(delete(tasks).where(tasks.c.backup_server_uid == server)).rowcount
        found = cli("verify", "--url", sim.url, "--user", "demo", "--db", db_url)
        assert found.returncode == 1, found.stdout + found.stderr
        assert "BackupTaskSession" in found.stdout and f"{gone:>9}" in found.stdout
        assert "1 of " in found.stdout and "--repair" in found.stdout

        repaired = cli("verify", "--url", sim.url, "--user", "demo", "--db", db_url, "--repair")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        assert "repair load" in repaired.stdout and "0 of " in repaired.stdout.rsplit("verify", 1)[-1]
        with eng.connect() as conn:
            assert conn.scalar(select(tasks.c.uid).where(tasks.c.uid == lost)) == lost
        assert_equal_to_truth(eng, world.truth())
        eng.dispose()
