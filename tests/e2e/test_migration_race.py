"""Two first runs at once on an empty warehouse: migrations are serialised by a database lock, so one
run loads and the other ends in the lock's exit 75, never in a half-created schema or exit 1."""

from __future__ import annotations

import subprocess
import sys

from etl import db
from etl.simulator import Faults, Simulator, World
from helpers import assert_equal_to_truth, cli_env


def _start(sim: Simulator, db_url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "etl", "run", "--url", sim.url, "--user", "demo", "--db", db_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=cli_env(),
    )


def test_two_first_runs_at_once_on_an_empty_warehouse(db_url):
    world = World(seed=12, servers=2, jobs=3, vms_per_job=4, days=3)
    # every data request answers a little late, so the winner still holds the run lock when the
    # loser, having waited for the migration, asks for it
    with Simulator(world, faults=Faults(seed=12, slow=1.0, slow_seconds=0.2)) as sim:
        procs = [_start(sim, db_url), _start(sim, db_url)]
        outcomes = [(p.wait(timeout=300), *p.communicate()) for p in procs]
        codes = sorted(code for code, _, _ in outcomes)
        assert codes == [0, 75], outcomes
        _, _, loser_err = next(o for o in outcomes if o[0] == 75)
        assert "Traceback" not in loser_err, loser_err
        assert loser_err.splitlines()[-1].startswith("veeam-etl: error: another "), loser_err
        assert "lock" in loser_err.splitlines()[-1] or "migrating" in loser_err.splitlines()[-1]
        eng = db.engine(db_url)
        assert db.current(eng) == db.head()
        assert_equal_to_truth(eng, world.truth())
        eng.dispose()
