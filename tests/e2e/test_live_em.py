"""Against an Enterprise Manager that changes while it is read, over a real socket (em-api.md, "EM
changes while it is read"): EM collecting while a first load pages through it, a backup imported with
points weeks older than any watermark, a window filter EM misreads, an empty uid list in EM's shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from etl import db, pipeline, schema
from etl.simulator import Quirks, Simulator, World
from helpers import assert_equal_to_truth, cli, dump

RETENTION = (
    "restore_points",
    "vm_restore_points",
    "backup_files",
    "vm_replica_points",
    "backups",
    "replicas",
)


def assert_equal_to_live_truth(eng, world: World) -> None:
    """The warehouse holds exactly what EM lists now, row for row; beyond it only what EM listed and
    removed since (`world.removed`: sessions its history retention purged, points retention retired),
    marked deleted where the table keeps `deleted_at`. A task's restore point known before its point
    retired stays what the warehouse learnt then."""
    truth, got, removed = world.truth(), dump(eng), world.removed
    for table, rows in truth.items():
        have = got[table]
        gone = {uid for uid, row in rows.items() if row.get("placeholder")} if table in RETENTION else set()
        for uid, expected in rows.items():
            assert uid in have, f"{table}: missing {uid}"
            row = have[uid]
            if uid in gone and not row["placeholder"]:  # loaded while EM listed it, retired since
                assert row["deleted_at"] is not None and uid in removed, f"{table} {uid} not marked deleted"
                continue
            diff = {k: (row.get(k), v) for k, v in expected.items() if row.get(k) != v}
            if table == "backup_task_sessions" and set(diff) <= {
                "vm_restore_point_uid",
                "vm_restore_point_link",
            }:
                point = got["vm_restore_points"].get(row["vm_restore_point_uid"] or "")
                if point is not None and point["deleted_at"] is not None:
                    continue  # linked (or inferred) while the point was listed
            assert not diff, f"{table} {uid}: (warehouse, truth) differ: {diff}"
        for uid in set(have) - set(rows):
            assert uid in removed, f"{table}: {uid} is neither listed by EM nor removed by it"
            if table in RETENTION:
                assert have[uid]["deleted_at"] is not None, f"{table}: {uid} removed but not marked deleted"


def test_a_first_load_while_em_collects_and_retires_then_one_incremental_run_equals_em(db_url):
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    world = World(
        seed=21,
        servers=2,
        jobs=3,
        vms_per_job=4,
        days=6,
        runs_per_day=3,
        backup_jobs=3,
        agent_jobs=1,
        copy_jobs=1,
        retention_days=3,
        history_days=5,
        now=now,
        running_share=0.3,
        quirks=Quirks(collecting_minutes=20),  # EM's clock moves 20 minutes before every query page
    )
    # no completeness check: what is shown is the paging loop's own (the check would mend its misses)
    options = pipeline.Options(page_size=15, verify=False)
    with Simulator(world) as sim:
        eng = db.engine(db_url)
        start = world.now
        pipeline.run(eng, sim.url, "demo", "demo", options=options)
        moved = world.now - start
        assert moved > timedelta(days=1)  # it paged through a day and more of EM's life
        assert any(":RestorePoint:" in u for u in world.removed)  # retention removed points meanwhile
        assert any(":BackupJobSession:" in u for u in world.removed)  # history retention purged sessions

        world.quirks.collecting_minutes = None  # EM stands still from here on
        second = pipeline.run(
            eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=15, sweep=True, verify=False)
        )
        assert second.status == "succeeded"
        assert_equal_to_live_truth(eng, world)
        eng.dispose()


def test_an_imported_backup_brings_its_old_points_files_and_vm_points_in_the_next_run(db_url):
    world = World(seed=9, servers=2, jobs=1, vms_per_job=3, days=3, backup_jobs=2, agent_jobs=0, copy_jobs=0)
    with Simulator(world) as sim:
        eng = db.engine(db_url)
        pipeline.run(eng, sim.url, "demo", "demo")
        imported = world.import_backup(server=1, weeks=4, points=3)  # weeks before every watermark
        before = sim.requests_by_kind["query"]
        summary = pipeline.run(eng, sim.url, "demo", "demo")
        assert summary.mode == "incremental"
        assert summary.tables["restore_points"]["inserted"] == 3
        assert summary.tables["backup_files"]["inserted"] == 3
        assert summary.tables["vm_restore_points"]["inserted"] == 6
        assert_equal_to_truth(eng, world.truth())
        with eng.connect() as conn:
            b = conn.execute(select(schema.backups).where(schema.backups.c.uid == imported.uid)).one()
        assert b.name.endswith("_imported") and b.repository_uid is None
        assert sim.requests_by_kind["query"] - before < 40  # a few by parent, not a full read
        eng.dispose()


def test_a_window_filter_em_misreads_fails_the_run_loudly_naming_it(db_url):
    world = World(seed=5, servers=2, jobs=2, vms_per_job=3, days=2, backup_jobs=1, agent_jobs=0, copy_jobs=0)
    with Simulator(world) as sim:
        assert cli("run", "--url", sim.url, "--user", "demo", "--db", db_url).returncode == 0
        eng = db.engine(db_url)
        with eng.connect() as conn:
            marks = conn.execute(select(schema.etl_watermarks)).all()
        world.quirks.misread_server_filter = True  # EM compares BackupServerUid with the bare GUID
        done = cli("run", "--url", sim.url, "--user", "demo", "--db", db_url)
        assert done.returncode == 1, done.stdout + done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert "did not read the filter as meant" in last and "BackupServerUid==" in last, last
        assert "Traceback" not in done.stderr
        with eng.connect() as conn:
            statuses = conn.scalars(select(schema.etl_runs.c.status).order_by(schema.etl_runs.c.id)).all()
            assert statuses == ["succeeded", "failed"]
            assert conn.execute(select(schema.etl_watermarks)).all() == marks  # nothing moved on

        world.quirks.misread_server_filter = False  # once EM reads it as meant, the next run completes
        assert cli("run", "--url", sim.url, "--user", "demo", "--db", db_url).returncode == 0
        assert_equal_to_truth(eng, world.truth())
        eng.dispose()


def test_an_empty_uid_list_without_refs_sweeps_as_empty(db_url):
    world = World(seed=6, servers=1, jobs=0, vms_per_job=2, days=2, backup_jobs=1, agent_jobs=0, copy_jobs=0)
    with Simulator(world) as sim:
        eng = db.engine(db_url)
        pipeline.run(eng, sim.url, "demo", "demo")
        now = datetime.now(UTC)
        gone = "urn:veeam:VmReplicaPoint:0b6c2a54-0000-4f00-9000-000000000001"
        with eng.begin() as conn:  # a replica point EM once listed; EM lists none now
            run_id = conn.scalar(select(schema.etl_runs.c.id))
            conn.execute(
                insert(schema.vm_replica_points).values(
                    uid=gone,
                    href=f"{sim.url}/vmReplicaPoints/0b6c2a54-0000-4f00-9000-000000000001",
                    name="old@2025-01-01 00:00:00",
                    placeholder=False,
                    **schema.meta_values(pipeline.source_name(sim.url), run_id, now),
                )
            )
        summary = pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(sweep=True))
        assert summary.status == "succeeded"
        assert summary.swept["vm_replica_points"] == {"deleted": 1, "back": 0}
        with eng.connect() as conn:
            row = conn.execute(
                select(schema.vm_replica_points).where(schema.vm_replica_points.c.uid == gone)
            ).one()
        assert row.deleted_at is not None
        eng.dispose()


def test_an_empty_window_over_points_em_no_longer_lists_is_not_a_misread_filter(db_url, caplog):
    world = World(seed=8, servers=1, jobs=0, vms_per_job=2, days=2, backup_jobs=1, agent_jobs=0, copy_jobs=0)
    with Simulator(world) as sim:
        eng = db.engine(db_url)
        pipeline.run(eng, sim.url, "demo", "demo")
        marks, points = schema.etl_watermarks, schema.restore_points
        later = world.now + timedelta(days=30)  # a point the warehouse holds that EM deleted since
        gone = "urn:veeam:RestorePoint:0b6c2a54-0000-4f00-9000-000000000002"
        with eng.begin() as conn:
            run_id, server, backup = conn.execute(
                select(points.c.run_id, points.c.backup_server_uid, points.c.backup_uid).limit(1)
            ).one()
            conn.execute(
                insert(points).values(
                    uid=gone, backup_uid=backup, backup_server_uid=server, backup_date_utc=later,
                    placeholder=False, **schema.meta_values(pipeline.source_name(sim.url), run_id, later),
                )
            )  # fmt: skip
            conn.execute(
                marks.update().where(marks.c.entity_type == "RestorePoint").values(watermark_utc=later)
            )
        with caplog.at_level("INFO", logger="etl.pipeline"):
            summary = pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(sweep=True))
        assert summary.status == "succeeded"  # EM answered the window with nothing: nothing is there
        assert "RestorePoint: EM answered no row to a window and lists none of the 1 rows" in caplog.text
        with eng.connect() as conn:
            assert conn.scalar(select(points.c.deleted_at).where(points.c.uid == gone)) is not None
        eng.dispose()
