"""etl.simulator.fleet: several simulated EMs at once, each its own estate on its own port."""

from __future__ import annotations

import socket
import tomllib

import httpx
import pytest

from etl.simulator import Faults, fleet

SIZE = {"servers": 1, "jobs": 2, "vms_per_job": 2, "days": 2}


def _free_run(n: int) -> int:
    """A port p with p .. p+n-1 free right now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65535:
            continue
        taken = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                taken.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in taken:
                s.close()
    pytest.fail("no run of free ports found")


def test_consecutive_ports_different_seeds_and_an_estate_file():
    base = _free_run(3)
    with fleet.serving(3, port=base, seed=5, **SIZE) as sims:
        assert [s.port for s in sims] == [base, base + 1, base + 2]
        assert [s.world.seed for s in sims] == [5, 6, 7]
        uids = [set(s.truth()["backup_servers"]) for s in sims]
        assert not (uids[0] & uids[1]) and not (uids[1] & uids[2])
        for sim in sims:
            assert httpx.get(sim.url + "/").status_code in (200, 401)
        estate = tomllib.loads(fleet.estate_toml(sims, password_env="SIM_PW"))
        assert estate["defaults"] == {"user": "demo", "password_env": "SIM_PW"}
        assert [(e["name"], e["url"]) for e in estate["em"]] == [
            (f"em{i}", s.url) for i, s in enumerate(sims, 1)
        ]
    with pytest.raises(httpx.ConnectError):
        httpx.get(sims[0].url + "/")


def test_free_ports_faults_per_simulator_and_a_taken_port_stops_the_rest():
    with fleet.serving(2, faults=[None, Faults(down=True)], **SIZE) as (up, down):
        assert up.port != down.port
        assert down.faults.down and not up.faults.down
    base = _free_run(2)
    with socket.socket() as busy:  # the second port is taken: the first simulator must not stay up
        busy.bind(("127.0.0.1", base + 1))
        busy.listen()
        with pytest.raises(OSError):
            fleet.start(2, port=base, **SIZE)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{base}/api/")
