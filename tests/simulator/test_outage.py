"""EM restarts: every logon token dies and, for a while, every request answers HTTP.sys's 503 page
(mode "503") or the port refuses connections (mode "refuse"), then the same URL serves again."""

from __future__ import annotations

import time

import httpx
import pytest
from simapi import NS, Api, xml_of

from etl.simulator import Faults, Simulator, World


def small() -> World:
    return World(seed=2, jobs=2, vms_per_job=3, days=2)


def wait_until(predicate, seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def serves(sim: Simulator) -> bool:
    try:
        return httpx.get(sim.url + "/", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_503_restart_after_n_data_requests():
    faults = Faults(outage_after=3, outage_seconds=0.6)
    with Simulator(small(), faults=faults) as s:
        api = Api(s)
        codes = [api.get("/query", type="BackupServer").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 503]
        assert faults.fired["outage"] == 1 and s.outages == 1
        down = api.get("/backupServers")
        assert down.status_code == 503 and b"HTTP Error 503. The service is unavailable." in down.content
        assert down.headers["Content-Type"].startswith("text/html")
        assert httpx.get(s.url + "/").status_code == 503  # root and logon too
        assert httpx.post(s.url + "/sessionMngr/?v=latest", auth=("demo", "demo")).status_code == 503
        assert httpx.post(s.url.replace("/api", "/admin/advance"), params={"hours": "0"}).status_code == 204
        assert wait_until(lambda: serves(s))
        stale = api.get("/query", type="BackupServer")  # the restart forgot every token
        assert stale.status_code == 401 and xml_of(stale.content).tag == NS + "Error"
        fresh = Api(s)
        assert [fresh.get("/query", type="BackupServer").status_code for _ in range(5)] == [200] * 5
        assert faults.fired["outage"] == 1  # outage_count=1: one restart


def test_refuse_restart_closes_the_port_resets_connections_and_listens_again():
    faults = Faults(outage_after=2, outage_seconds=0.8, outage_mode="refuse")
    with Simulator(small(), faults=faults) as s:
        port = s.port
        api = Api(s)
        idle = httpx.Client(timeout=2)  # a second keep-alive connection, open when EM goes away
        assert idle.get(s.url + "/").status_code == 200
        assert api.get("/backupServers").status_code == 200
        assert api.get("/backupServers").status_code == 200
        with pytest.raises(httpx.TransportError):
            api.get("/backupServers")  # the request that meets the restart is cut off
        with pytest.raises(httpx.TransportError):
            idle.get(s.url + "/")
        with pytest.raises(httpx.ConnectError):
            httpx.get(s.url + "/", timeout=2)
        assert wait_until(lambda: serves(s)) and s.port == port
        assert api.get("/backupServers").status_code == 401
        assert Api(s).get("/backupServers").status_code == 200
        assert faults.fired["outage"] == 1


def test_restarts_repeat_and_are_counted_by_requests():
    def run() -> list[int]:
        faults = Faults(outage_after=2, outage_seconds=0.2, outage_count=2)
        out = []
        with Simulator(small(), faults=faults) as s:
            for _ in range(2):
                api = Api(s)
                out += [api.get("/backupServers").status_code for _ in range(3)]
                assert wait_until(lambda s=s: serves(s))
            api = Api(s)
            out += [api.get("/backupServers").status_code for _ in range(3)]
        return out

    first = run()
    assert first == [200, 200, 503, 200, 200, 503, 200, 200, 200]
    assert run() == first


@pytest.mark.parametrize("mode", ["503", "refuse"])
def test_admin_outage(mode):
    with Simulator(small()) as s:
        api = Api(s)
        admin = s.url.replace("/api", "/admin/outage")
        assert httpx.post(admin, params={"seconds": "0.5", "mode": "bogus"}).status_code == 400
        assert httpx.post(admin, params={"seconds": "0.5", "mode": mode}).status_code == 204
        assert s.outages == 1
        if mode == "503":
            assert httpx.get(s.url + "/").status_code == 503
        else:
            with pytest.raises(httpx.ConnectError):
                httpx.get(s.url + "/", timeout=2)
        assert wait_until(lambda: serves(s))
        assert api.get("/backupServers").status_code == 401


def test_stop_during_a_refusing_outage_does_not_listen_again():
    s = Simulator(small()).start()
    s.outage(0.3, "refuse")
    s.stop()
    time.sleep(0.6)
    with pytest.raises(httpx.ConnectError):
        httpx.get(s.url + "/", timeout=2)
    with pytest.raises(ValueError):
        s.outage(1, "explode")
