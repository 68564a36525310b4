"""Every declared `ByParent` relation (etl.registry) reaches EM: the filter it names lists exactly the
children of a parent, by the column it names — asked through the product's own paging loop of a
simulator over a real socket. And the run reads the children of a parent new to the warehouse only
where its windows do not (etl.derive.new_parents, etl.plan.parents_outside_windows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from etl import db, derive, filters, pipeline, plan, registry, schema
from etl.crawl import Fetcher
from etl.simulator import Faults, Simulator, World
from helpers import Warehouse

RELATED = [t for t in registry.TYPES.values() if t.by_parent is not None]


def test_the_relations_are_declared_once_and_consistently():
    names = list(registry.TYPES)
    assert {t.name for t in RELATED} >= {
        "RestorePoint",
        "BackupFile",
        "VmRestorePoint",
        "VmReplicaPoint",
        "BackupTaskSession",
        "ReplicaTaskSession",
    }
    for t in RELATED:
        parent = registry.TYPES[t.parent_type]  # the column is one of its declared parents
        assert names.index(parent.name) < names.index(t.name), t.name  # parents are loaded first
    # Veeam's get_query_vmrestorepoint names it RestorePointId (em-backup-side.md §3), not …Uid
    assert registry.VM_RESTORE_POINT.by_parent.filter == "RestorePointId"


@pytest.mark.parametrize("entity_type", RELATED, ids=lambda t: t.name)
def test_each_relation_lists_exactly_the_children_of_a_parent(entity_type):
    world = World(seed=11, servers=2, jobs=2, vms_per_job=3, days=2, backup_jobs=2, agent_jobs=1, copy_jobs=1)
    truth = world.truth()
    column = entity_type.by_parent.column
    children: dict[str, set[str]] = {}
    for uid, row in truth[entity_type.table].items():
        if row.get(column) and not row.get("placeholder"):
            children.setdefault(row[column], set()).add(uid)
    parents = sorted(children, key=lambda p: -len(children[p]))[:3]

    def read(fetcher, flt) -> set[str]:
        return {u for page in fetcher.pages(entity_type, flt) for u in page.rows.column("uid")}

    options = pipeline.Options(page_size=2, concurrency=1, worker_processes=0)
    with Simulator(world) as sim, Fetcher(sim.url, "demo", "demo", options=options) as fetcher:
        for parent in parents:
            (flt,) = filters.children_of(entity_type, [parent])
            assert read(fetcher, flt) == children[parent], (entity_type.name, parent)
        (both,) = filters.children_of(entity_type, parents)  # OR-ed in one query
        assert read(fetcher, both) == set().union(*(children[p] for p in parents))


def test_children_are_asked_for_only_where_the_windows_do_not_read_them(db_url):
    w = Warehouse(db_url)
    now = datetime(2025, 8, 15, 12, tzinfo=UTC)
    w.loaded = now  # rows this "run" added
    s1, s2 = "urn:veeam:BackupServer:1", "urn:veeam:BackupServer:2"
    for server in (s1, s2):
        w.add(schema.backup_servers, uid=server, name=server)
    old, fresh, other = (
        "urn:veeam:RestorePoint:old",
        "urn:veeam:RestorePoint:fresh",
        "urn:veeam:RestorePoint:s2",
    )
    w.add(schema.restore_points, uid=old, backup_server_uid=s1, backup_date_utc=now - timedelta(days=20))
    w.add(schema.restore_points, uid=fresh, backup_server_uid=s1, backup_date_utc=now - timedelta(minutes=5))
    w.add(schema.restore_points, uid=other, backup_server_uid=s2, backup_date_utc=now - timedelta(days=20))
    w.loaded = now - timedelta(days=1)  # known before this run: not new
    w.add(schema.restore_points, uid="urn:veeam:RestorePoint:known", backup_server_uid=s1,
          backup_date_utc=now - timedelta(days=30))  # fmt: skip
    point = registry.VM_RESTORE_POINT
    window = now - timedelta(hours=2)

    def children(entity_type, begin) -> list[str]:  # as the run asks: the new parents, then the plan
        parent = registry.TYPES[entity_type.parent_type]
        with w.eng.connect() as conn:
            new = derive.new_parents(conn, parent, "test", now)
        return list(filters.children_of(entity_type, plan.parents_outside_windows(new, begin)))

    # s1 read from its window: only the new point older than it; s2 read whole: nothing to ask
    assert children(point, {s1: window, s2: None}) == [f'RestorePointId=="{old}"']
    # a full load reads everything: no query at all
    assert children(point, None) == []
    # a new backup (no creation time) brings its points and files wherever they were created
    w.loaded = now
    backup = w.add(schema.backups, uid="urn:veeam:Backup:new", backup_server_uid=s1)
    for t in (registry.RESTORE_POINT, registry.BACKUP_FILE):
        assert children(t, {s1: window, s2: None}) == [f'BackupUid=="{backup}"']
    w.close()


class Recorder(Faults):
    """No faults: the filters of the queries EM was asked."""

    def __init__(self):
        super().__init__()
        self.filters: list[str] = []

    def intercept(self, ctx):
        if ctx.kind == "query":
            self.filters.append(ctx.query.get("filter", ""))
        return None


def by_parent(filters: list[str]) -> list[str]:
    names = {f"{t.by_parent.filter}==" for t in RELATED if t.final_state is None and t.by_parent}
    return [f for f in filters if any(f.startswith(n) for n in names)]


def test_a_full_load_asks_nothing_by_parent_and_an_imported_backup_a_few_queries(tmp_path):
    world = World(seed=12, servers=2, jobs=1, vms_per_job=2, days=2, backup_jobs=1, agent_jobs=0, copy_jobs=0)
    recorder = Recorder()
    with Simulator(world, faults=recorder) as sim:
        eng = db.engine(f"sqlite:///{tmp_path}/w.db")
        pipeline.run(eng, sim.url, "demo", "demo")
        assert recorder.filters and by_parent(recorder.filters) == []  # read whole: no query by parent
        recorder.filters.clear()
        pipeline.run(eng, sim.url, "demo", "demo")
        assert by_parent(recorder.filters) == []  # nothing new: nothing asked
        imported = world.import_backup(server=0, weeks=2, points=2)
        recorder.filters.clear()
        pipeline.run(eng, sim.url, "demo", "demo")
        asked = by_parent(recorder.filters)
        # its restore points and files by BackupUid, their VM restore points by RestorePointId
        assert sorted(f.split("==")[0] for f in asked) == ["BackupUid", "BackupUid", "RestorePointId"]
        assert all(imported.uid in f for f in asked if f.startswith("BackupUid"))
        eng.dispose()
