"""Retention: restore points (VM and agent computer), backup files and replica points EM removes keep
their rows with `deleted_at` set (never deleted); the views no longer count them; a sweep with nothing
removed changes nothing."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from etl import db, derive, pipeline, registry, report, schema
from etl.simulator import Simulator, World
from helpers import assert_equal_to_truth, dump

SWEPT = [
    "restore_points",
    "vm_restore_points",
    "agent_restore_points",
    "backup_files",
    "vm_replica_points",
    "backups",
    "replicas",
]


def deleted(eng) -> dict[str, set[str]]:
    out = {}
    with eng.connect() as conn:
        for name in SWEPT:
            table = schema.table(name)
            out[name] = set(conn.scalars(select(table.c.uid).where(table.c.deleted_at.is_not(None))))
    return out


def test_what_retention_removes_is_marked_deleted_and_the_rest_stays_exact(db_url):
    world = World(seed=12, servers=2, jobs=3, vms_per_job=4, days=6, retention_days=3)
    options = pipeline.Options(page_size=40)
    with Simulator(world) as sim:
        eng = db.engine(db_url)
        pipeline.run(eng, sim.url, "demo", "demo", options=options)
        assert {k: v for k, v in deleted(eng).items() if v} == {
            k: v for k, v in world.truth_deleted().items() if v
        }
        before = dump(eng)
        world.advance(timedelta(days=2))  # two more days of points; the oldest two days retire
        soon = pipeline.run(eng, sim.url, "demo", "demo", options=options)
        assert soon.sweep_requests == 0  # the last sweep is not `sweep_hours` old: not due
        assert all(c == {"deleted": 0, "back": 0} for c in soon.swept.values()), soon.swept
        second = pipeline.run(
            eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=40, sweep=True)
        )
        assert second.sweep_requests > 0
        truth, gone = world.truth(), deleted(eng)
        for name in (
            "restore_points",
            "vm_restore_points",
            "agent_restore_points",
            "backup_files",
            "vm_replica_points",
        ):
            listed = {u for u, r in truth[name].items() if not r.get("placeholder")}
            retired = {u for u, r in before[name].items() if not r.get("placeholder")} - listed
            assert retired, name  # the world did retire some of what the first run loaded
            assert retired <= gone[name] and not (gone[name] & listed), name
            # a retired point tasks still link to is a placeholder for a fresh crawl; the warehouse
            # keeps what it learnt while EM listed it
            for uid in retired & set(truth[name]):
                truth[name][uid] = {k: before[name][uid][k] for k in truth[name][uid]}
        for uid, row in truth["backup_task_sessions"].items():  # and the points it inferred then
            old = before["backup_task_sessions"].get(uid)
            if old and old["vm_restore_point_link"] == "inferred" and row["vm_restore_point_uid"] is None:
                row.update(vm_restore_point_uid=old["vm_restore_point_uid"], vm_restore_point_link="inferred")
        assert_equal_to_truth(eng, truth, retired=True)  # the rest equals what EM lists now
        # an agent computer is judged by the agent points EM still lists, not by those retention removed
        listed = Counter(
            (r["backup_server_uid"], r["computer_name"]) for r in truth["agent_restore_points"].values()
        )
        with eng.connect() as conn:
            computers = report.read_view(conn, "v_vm_backup_status", "kind = 'agent'")
        assert listed and {
            (c["backup_server_uid"], c["vm_key"]): c["restore_points"]
            for c in computers
            if c["restore_points"]
        } == dict(listed)

        # nothing changed in EM: a forced sweep marks nothing and writes nothing
        snapshot = dump(eng, with_meta=True)
        quiet = pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=40, sweep=True))
        assert quiet.sweep_requests > 0
        assert all(c == {"deleted": 0, "back": 0} for c in quiet.swept.values()), quiet.swept
        assert dump(eng, with_meta=True) == snapshot
        eng.dispose()


def test_the_sweep_reads_uid_lists_only_when_due():
    assert {t.table for t in derive.swept_types()} == set(SWEPT)


def test_a_row_the_uid_lists_lack_is_marked_deleted_only_if_em_does_not_return_it_by_uid(db_url):
    """EM's uid lists are offset pages into a result it changes: one may lack a row EM still holds.
    Such a row is a candidate only; EM is asked for it by UID, and only what it does not return is
    marked deleted."""
    from datetime import UTC, datetime

    from helpers import Warehouse

    w = Warehouse(db_url)
    now = datetime(2025, 8, 15, 12, tzinfo=UTC)
    listed, slid, gone = (w.add(schema.restore_points) for _ in range(3))
    asked: list[list[str]] = []

    def lookup(uids: list[str]) -> set[str]:
        asked.append(sorted(uids))
        return {slid} & set(uids)  # EM still holds the one that slid past its lists

    marked, back = pipeline.sweep_type(w.eng, registry.RESTORE_POINT, "test", 999, now, [[listed]], lookup)
    assert (marked, back) == (1, 0) and asked == [sorted([slid, gone])]
    with w.eng.connect() as conn:
        deleted = dict(
            conn.execute(select(schema.restore_points.c.uid, schema.restore_points.c.deleted_at)).all()
        )
    assert deleted[gone] is not None and deleted[slid] is None and deleted[listed] is None
    w.close()
