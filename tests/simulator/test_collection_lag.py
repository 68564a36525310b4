"""Collection lag per backup server (em-api.md): EM shows a lagging server as it was `lag` hours ago,
so its sessions and points reach EM late with their original CreationTimeUTC; others deliver at once.
Ground truth at `now` is what EM lists at now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from simapi import Api

from etl.simulator import Quirks, Simulator, World

NOW = datetime(2025, 8, 15, 12, 0, tzinfo=UTC)
TABLES = ("replica_job_sessions", "replica_task_sessions", "vm_replica_points")
TYPES = {
    "replica_job_sessions": "ReplicaJobSession",
    "replica_task_sessions": "ReplicaTaskSession",
    "vm_replica_points": "VmReplicaPoint",
}


def world(**quirks) -> World:
    return World(seed=21, servers=2, jobs=6, vms_per_job=4, days=3, runs_per_day=8, quirks=Quirks(**quirks))


def of_server(t: dict, table: str, uid: str) -> dict:
    return {u: r for u, r in t[table].items() if r["backup_server_uid"] == uid}


def test_a_lagging_server_shows_as_it_was_hours_ago():
    lagged, twin = world(collection_lag_hours={1: 3}), world()
    late, prompt = lagged.servers[1].uid, lagged.servers[0].uid
    t, tt = lagged.truth(), twin.truth()
    cut = NOW - timedelta(hours=3)
    for table in TABLES:
        assert of_server(t, table, prompt) == of_server(tt, table, prompt)  # the other server: at once
        rows, all_rows = of_server(t, table, late), of_server(tt, table, late)
        assert rows and all(r["creation_time_utc"] <= cut for r in rows.values())
        missing = set(all_rows) - set(rows)
        assert missing and all(all_rows[u]["creation_time_utc"] > cut - timedelta(minutes=2) for u in missing)
        for r in rows.values():  # states as of the last collection: nothing ended after it
            assert r.get("end_time_utc") is None or r["end_time_utc"] <= cut
    running_then = [
        u
        for u, r in of_server(t, "replica_job_sessions", late).items()
        if r["state"] != "Stopped" and tt["replica_job_sessions"][u]["state"] == "Stopped"
    ]
    assert running_then  # EM still shows them running: it has not heard from the server since


def test_lagging_sessions_are_absent_from_every_endpoint_until_collected():
    lagged, twin = world(collection_lag_hours={1: 3}), world()
    with Simulator(lagged) as s:
        api = Api(s)
        t = s.truth()
        for table, type_ in TYPES.items():
            served = {el.get("UID") for el in api.query_all(type_, page_size=1000)}
            assert served == set(t[table])
        late = lagged.servers[1].uid
        tt = twin.truth(s.origin)
        missing = {
            u: r for u, r in of_server(tt, "replica_job_sessions", late).items() if u not in t[TABLES[0]]
        }
        assert missing
        uid, row = next(iter(missing.items()))
        assert api.get(row["href"]).status_code == 404
        assert uid not in {el.get("UID") for el in api.xml("/replicaSessions")}
        flt = f"BackupServerUid=={late}"
        before = {el.get("UID") for el in api.query_all("ReplicaJobSession", page_size=1000, filter=flt)}
        lagged.advance(timedelta(hours=3))
        twin.advance(timedelta(hours=3))
        after = {el.get("UID") for el in api.query_all("ReplicaJobSession", page_size=1000, filter=flt)}
        arrived = after - before
        assert uid in arrived and set(missing) <= arrived
        t = s.truth()
        for u in arrived:  # with their original creation time, hours before they arrived
            assert t["replica_job_sessions"][u]["creation_time_utc"] <= NOW
        assert api.get(row["href"]).status_code == 200


def test_lag_set_while_running_freezes_then_catches_up_exactly():
    w, twin = world(), world()
    late = w.servers[1].uid
    frozen = {table: of_server(w.truth(), table, late) for table in TABLES}
    w.set_collection_lag(1, 3)  # EM loses touch with the server
    for _ in range(4):
        w.advance(timedelta(minutes=30))
        twin.advance(timedelta(minutes=30))
        t = w.truth()
        for table in TABLES:
            assert of_server(t, table, late) == frozen[table]  # nothing new, nothing changes
            assert of_server(t, table, w.servers[0].uid) == of_server(twin.truth(), table, w.servers[0].uid)
    assert len(twin.truth()["replica_job_sessions"]) > len(w.truth()["replica_job_sessions"])
    changed = w.set_collection_lag(1, 0)  # the server is reachable again: all of it at once
    assert changed and w.truth() == twin.truth()


def test_caught_up_world_equals_one_that_never_lagged():
    lagged, twin = world(collection_lag_hours={1: 5}), world()
    for _ in range(3):
        lagged.advance(timedelta(hours=2))
        twin.advance(timedelta(hours=2))
    assert lagged.truth() != twin.truth()
    lagged.set_collection_lag(1, 0)
    assert lagged.truth() == twin.truth()
    assert lagged.stats() == twin.stats()
