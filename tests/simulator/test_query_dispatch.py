"""The query service answers a per-server window filter by a lookup on the server: the same
entities as trying every alternative in turn (the window written the other way round)."""

from etl.simulator import World
from etl.simulator.query import QueryEngine


def test_per_server_windows_by_lookup_select_what_the_plain_evaluation_selects():
    world = World(seed=4, servers=4, jobs=6, vms_per_job=5, days=4, backup_jobs=2)
    engine = QueryEngine(world)
    at = ['"2025-08-13T00:00:00Z"', '"2025-08-14T06:00:00Z"', '"2025-08-12T00:00:00Z"']
    servers = [s.uid for s in world.servers[:3]]
    window = "CreationTime>={a},EndTime>={a},State!=Completed"
    led = ",".join(
        f'(BackupServerUid=="{s}";({window.format(a=a)}))' for s, a in zip(servers, at, strict=True)
    )
    trailing = ",".join(
        f'(({window.format(a=a)});BackupServerUid=="{s}")' for s, a in zip(servers, at, strict=True)
    )
    for kind in ("ReplicaTaskSession", "BackupTaskSession"):
        fast = engine.select(kind, led, "CreationTime", False)
        plain = engine.select(kind, trailing, "CreationTime", False)
        assert fast == plain and 0 < len(fast) < len(engine.source(kind))
