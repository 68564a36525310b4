"""Alembic owns the schema: upgrade an empty warehouse, autogenerate finds no difference, down and up again."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from etl import db, schema, views


def _diff(eng):
    with eng.connect() as conn:
        return compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), schema.metadata
        )


def test_upgrade_empty_then_no_autogenerate_diff(db_url):
    eng = db.engine(db_url)
    db.migrate(eng)
    assert db.current(eng) == db.head()
    assert _diff(eng) == []
    names = set(inspect(eng).get_table_names())
    assert {t.name for t in schema.metadata.sorted_tables} <= names
    with eng.connect() as conn:
        assert (
            conn.scalar(select(schema.etl_settings.c.value).where(schema.etl_settings.c.key == "rpo_hours"))
            == "24"
        )
    assert set(views.names(eng.dialect.name)) <= set(inspect(eng).get_view_names())
    eng.dispose()


def test_downgrade_to_base_and_up_again(db_url):
    eng = db.engine(db_url)
    db.migrate(eng)
    cfg = db.alembic_config()
    with eng.begin() as conn:
        views.drop(conn)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert not (set(inspect(eng).get_table_names()) & {"backup_servers", "etl_runs"})
    db.migrate(eng)
    assert _diff(eng) == []
    eng.dispose()


def test_sqlite_enforces_foreign_keys(tmp_path):
    eng = db.engine(f"sqlite:///{tmp_path}/fk.db")
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    eng.dispose()


def test_upgrading_a_populated_0001_warehouse_keeps_every_row(db_url):
    """0002 adds the backup side and foreign keys from rows already loaded (to jobs and replicas):
    every old row survives with its values, the jobs and replicas they name are recorded as
    placeholders, and the watermarks become per backup server."""
    from datetime import UTC, datetime

    from sqlalchemy import MetaData, func, insert

    from etl.simulator import World

    eng = db.engine(db_url)
    cfg = db.alembic_config()
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    old = MetaData()
    old.reflect(eng)
    truth = World(seed=5, servers=2, jobs=3, vms_per_job=4, days=3).truth()
    now = datetime(2025, 8, 15, 12, tzinfo=UTC)
    meta = {"source": "em", "first_loaded_at": now, "last_loaded_at": now, "run_id": 1}
    tables = ["backup_servers", "replica_job_sessions", "vm_replica_points", "replica_task_sessions"]
    with eng.begin() as conn:
        conn.execute(
            insert(old.tables["etl_runs"]).values(
                id=1,
                source="em",
                started_at=now,
                status="succeeded",
                mode="full",
                rows_inserted=0,
                rows_updated=0,
                parents_from_links=0,
                requests=0,
                retries=0,
                quarantined=0,
                foreign_links=0,
            )
        )
        for name in tables:
            columns = {c.name for c in old.tables[name].columns}
            values = [{k: v for k, v in {**r, **meta}.items() if k in columns} for r in truth[name].values()]
            conn.execute(insert(old.tables[name]), values)
        for entity_type in ("ReplicaJobSession", "ReplicaTaskSession", "VmReplicaPoint"):
            conn.execute(
                insert(old.tables["etl_watermarks"]).values(
                    source="em", entity_type=entity_type, watermark_utc=now, run_id=1, updated_at=now
                )
            )

    def rows(conn, name):  # the old columns, read with the typed schema (aware instants on SQLite too)
        columns = [schema.table(name).c[c.name] for c in old.tables[name].columns]
        return [tuple(r) for r in conn.execute(select(*columns).order_by(text("uid")))]

    with eng.connect() as conn:
        before = {name: rows(conn, name) for name in tables}

    db.migrate(eng)

    assert db.current(eng) == db.head() and _diff(eng) == []
    with eng.connect() as conn:
        for name in tables:
            assert rows(conn, name) == before[name], name
        job_uids = {r["job_uid"] for r in truth["replica_job_sessions"].values()}
        jobs = conn.execute(select(schema.jobs.c.uid, schema.jobs.c.placeholder, schema.jobs.c.name)).all()
        assert {uid for uid, _, _ in jobs} == job_uids and all(placeholder for _, placeholder, _ in jobs)
        assert all(name for _, _, name in jobs)  # the job name the sessions carried
        replica_uids = {r["replica_uid"] for r in truth["vm_replica_points"].values() if r["replica_uid"]}
        assert set(conn.scalars(select(schema.replicas.c.uid))) == replica_uids
        marks = conn.execute(select(schema.etl_watermarks)).mappings().all()
        servers = {r["backup_server_uid"] for r in truth["replica_task_sessions"].values()}
        assert {(m["entity_type"], m["backup_server_uid"]) for m in marks} >= {
            ("ReplicaTaskSession", s) for s in servers
        }
        for m in marks:
            table = schema.table(
                {
                    "ReplicaJobSession": "replica_job_sessions",
                    "ReplicaTaskSession": "replica_task_sessions",
                    "VmReplicaPoint": "vm_replica_points",
                }[m["entity_type"]]
            )
            newest = conn.scalar(
                select(func.max(table.c.creation_time_utc)).where(
                    table.c.backup_server_uid == m["backup_server_uid"]
                )
            )
            assert m["watermark_utc"] == min(newest, now)
        if eng.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    eng.dispose()


def test_upgrading_a_populated_0002_warehouse_keeps_every_run_and_reads_it_as_not_checked(db_url):
    """0003 adds what the completeness check records to etl_runs: every run recorded before keeps its
    row as it was, and reads as a run that made no check (NULL)."""
    from datetime import UTC, datetime

    from sqlalchemy import MetaData, insert

    eng = db.engine(db_url)
    cfg = db.alembic_config()
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    old = MetaData()
    old.reflect(eng)
    now = datetime(2025, 8, 15, 12, tzinfo=UTC)
    runs = [
        {"id": i, "source": "em", "started_at": now, "finished_at": now, "status": status, "mode": "full",
         "rows_inserted": 10 * i, "rows_updated": i, "counts": "{}", "parents_from_links": 0, "requests": 30 + i,
         "retries": 0, "quarantined": 0, "foreign_links": 0, "new_values": 0, "sweep_requests": i,
         "error": None if status == "succeeded" else "boom", "host": "h", "pid": 1}
        for i, status in ((1, "succeeded"), (2, "failed"))
    ]  # fmt: skip
    server = {"uid": "urn:veeam:BackupServer:1", "name": "vbr01", "placeholder": False, "source": "em",
              "first_loaded_at": now, "last_loaded_at": now, "run_id": 1}  # fmt: skip
    with eng.begin() as conn:
        conn.execute(insert(old.tables["etl_runs"]), runs)
        conn.execute(insert(old.tables["backup_servers"]).values(**server))

    db.migrate(eng)

    assert db.current(eng) == db.head() and _diff(eng) == []
    with eng.connect() as conn:
        got = [
            dict(r) for r in conn.execute(select(schema.etl_runs).order_by(schema.etl_runs.c.id)).mappings()
        ]
        assert [{k: r[k] for k in runs[0]} for r in got] == runs
        assert all(
            r[c] is None for r in got for c in ("verify_compared", "verify_differing", "verify_reloaded")
        )
        assert conn.scalar(select(schema.backup_servers.c.name)) == "vbr01"
    eng.dispose()
