"""What a real Enterprise Manager does over hours: it restarts (every token dies, the API answers
503 or refuses connections for a while) and it collects each backup server on its own schedule
(a server unreachable for hours delivers its sessions late, with their original creation times)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from etl import db, pipeline, runs, schema
from etl.simulator import Faults, Quirks, Simulator, World
from helpers import assert_equal_to_truth


@pytest.mark.parametrize(
    "mode,seconds",
    [
        ("503", 30.0),  # an EM service restart: HTTP.sys answers 503 meanwhile
        ("refuse", 8.0),  # an IIS recycle: the port refuses connections meanwhile
    ],
)
def test_an_em_restart_in_the_middle_of_a_load_is_waited_out_and_the_load_is_exact(mode, seconds, tmp_path):
    world = World(seed=21, servers=2, jobs=3, vms_per_job=5, days=3)
    faults = Faults(outage_after=12, outage_seconds=seconds, outage_mode=mode)
    with Simulator(world, faults=faults) as sim:
        eng = db.engine(f"sqlite:///{tmp_path}/w.db")
        summary = pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=10))
        assert faults.fired["outage"] == 1
        assert summary.status == "succeeded" and summary.retries > 0
        assert sim.requests_by_kind["logon"] >= 2  # every token died: logged on again
        assert_equal_to_truth(eng, world.truth())
        eng.dispose()


def test_a_backup_server_collected_hours_late_loses_nothing(db_url):
    """Server 1's sessions reach EM three hours after they were created while server 0 keeps
    delivering: the windows are kept per backup server, so the next ordinary runs load them."""
    world = World(
        seed=9, servers=2, jobs=4, vms_per_job=4, days=3, quirks=Quirks(collection_lag_hours={1: 3.0})
    )
    options = pipeline.Options(page_size=25)
    with Simulator(world) as sim:
        eng = db.engine(db_url)
        pipeline.run(eng, sim.url, "demo", "demo", options=options)
        assert_equal_to_truth(eng, world.truth())  # what EM lists now
        for _ in range(3):
            world.advance(timedelta(hours=1))
            assert pipeline.run(eng, sim.url, "demo", "demo", options=options).mode == "incremental"
            assert_equal_to_truth(eng, world.truth())
        world.set_collection_lag(1, 0.0)  # the backlog arrives at once, hours old
        late = pipeline.run(eng, sim.url, "demo", "demo", options=options)
        assert late.mode == "incremental" and late.tables["replica_task_sessions"]["inserted"] > 0
        assert_equal_to_truth(eng, world.truth())
        with eng.connect() as conn:
            marks = runs.watermarks(conn, late.source)
            servers = set(conn.scalars(select(schema.backup_servers.c.uid)))
        assert set(marks["ReplicaTaskSession"]) == servers  # one window per backup server
        eng.dispose()
