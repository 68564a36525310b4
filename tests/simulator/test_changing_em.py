"""The simulator as an Enterprise Manager that changes while it is read (em-api.md, "EM changes while
it is read"): its clock moving between query pages, imported backups, empty References pages in EM's
shape, a BackupServerUid filter it misreads, and the documented filter names only.

Reads XML with ElementTree (simapi), never etl.parse or etl.client.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from simapi import NS, Api, link

from etl.simulator import Quirks, Simulator, World
from etl.simulator.world import from_ticks

NOW = datetime(2025, 8, 15, 12, 0, tzinfo=UTC)


def uids(api: Api, type_: str, **params) -> list[str]:
    root = api.xml("/query", type=type_, format="References", pageSize="10000", **params)
    refs = root.find(NS + "Refs")
    return [] if refs is None else [r.get("UID") for r in refs]


def test_collecting_moves_the_clock_before_every_query_page_and_by_nothing_else():
    world = World(seed=3, servers=2, jobs=2, vms_per_job=3, days=4, backup_jobs=2, now=NOW,
                  retention_days=2, history_days=3, quirks=Quirks(collecting_minutes=90))  # fmt: skip
    with Simulator(world) as sim:
        api = Api(sim)
        api.xml("/backupServers")  # not a query: EM's clock stays
        assert world.now == NOW
        first = uids(api, "BackupJobSession")
        assert world.now == NOW + timedelta(minutes=90)
        for _ in range(15):
            uids(api, "RestorePoint")
        assert world.now == NOW + timedelta(minutes=90 * 16)  # a day: deterministic, by request
        later = uids(api, "BackupJobSession")
        assert set(first) - set(later)  # history retention purged the oldest sessions
        assert set(later) - set(first)  # collections brought new ones
        assert {u for u in first if u not in later} <= world.removed
        assert any(":RestorePoint:" in u for u in world.removed)  # retention removed the oldest points
        oldest = min(world.backup.sessions, key=lambda js: js.start)
        assert from_ticks(oldest.start) >= world.now - timedelta(days=3)
        world.quirks.collecting_minutes = None
        uids(api, "BackupJobSession")
        assert world.now == NOW + timedelta(minutes=90 * 17)


def test_an_imported_backup_has_no_repository_and_points_weeks_old_listed_by_parent():
    world = World(seed=4, servers=2, jobs=1, vms_per_job=3, days=2, backup_jobs=2, now=NOW, retention_days=1)
    with Simulator(world) as sim:
        api = Api(sim)
        imported = world.import_backup(server=1, weeks=3, points=3)
        backup = api.xml(f"/backups/{imported.guid}", format="Entity")
        assert backup.get("Name").endswith(" Backup_imported")
        assert link(backup, "Up", "RepositoryReference") is None
        assert link(backup, "Up", "BackupServerReference") is not None
        points = uids(api, "RestorePoint", filter=f'BackupUid=="{imported.uid}"')
        files = uids(api, "BackupFile", filter=f'BackupUid=="{imported.uid}"')
        assert len(points) == len(files) == 3
        vms = [u for p in points for u in uids(api, "VmRestorePoint", filter=f'RestorePointId=="{p}"')]
        assert len(vms) == 6
        week_ago = (NOW - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert set(points) <= set(uids(api, "RestorePoint", filter=f'CreationTime<"{week_ago}"'))
        world.advance(timedelta(days=2))  # no job's retention removes an imported backup's points
        assert len(uids(api, "RestorePoint", filter=f'BackupUid=="{imported.uid}"')) == 3
        truth = world.truth()
        assert truth["backups"][imported.uid]["repository_uid"] is None
        assert truth["backups"][imported.uid]["job_uid"] is None


def test_an_empty_references_page_has_paging_info_and_no_refs():
    with Simulator(World(seed=5, servers=1, jobs=0, backup_jobs=1, days=1, now=NOW)) as sim:
        api = Api(sim)
        for size in ("1", "500"):
            root = api.xml("/query", type="VmReplicaPoint", format="References", pageSize=size)
            assert root.find(NS + "Refs") is None
            assert root.find(NS + "PagingInfo") is not None
        past = api.xml("/query", type="BackupServer", format="References", pageSize="1", page="9")
        assert past.find(NS + "Refs") is None and past.find(NS + "PagingInfo").get("PagesCount") == "1"


def test_a_misread_server_filter_answers_an_empty_result_not_an_error():
    world = World(seed=6, servers=2, jobs=2, vms_per_job=2, days=1, backup_jobs=2, now=NOW)
    with Simulator(world) as sim:
        api = Api(sim)
        server = world.servers[0]
        for type_ in ("BackupJobSession", "ReplicaTaskSession", "RestorePoint"):
            assert uids(api, type_, filter=f'BackupServerUid=="{server.uid}"')
        world.quirks.misread_server_filter = True
        for type_ in ("BackupJobSession", "ReplicaTaskSession", "RestorePoint"):
            assert uids(api, type_, filter=f'BackupServerUid=="{server.uid}"') == []
            assert uids(api, type_, filter=f"BackupServerUid=={server.guid}")  # the bare GUID matches


def test_vm_restore_points_are_filtered_by_restore_point_id_and_an_unknown_filter_name_is_a_400():
    world = World(seed=7, servers=1, jobs=0, vms_per_job=2, days=1, backup_jobs=1, now=NOW)
    with Simulator(world) as sim:
        api = Api(sim)
        point = world.backup.rps[0]
        got = uids(api, "VmRestorePoint", filter=f'RestorePointId=="{point.uid}"')
        assert sorted(got) == sorted(v.uid for v in point.vrps)
        wrong = api.get("/query", type="VmRestorePoint", filter=f'RestorePointUid=="{point.uid}"')
        assert wrong.status_code == 400 and "RestorePointUid" in wrong.text
        assert api.xml("/query", type="VmRestorePoint").tag == NS + "QueryResult"
