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


def test_upgrading_a_populated_0002_warehouse_keeps_every_row(db_url):
    """0003 adds agent restore points, the job sources and the undocumented-values record to a warehouse
    that holds both sides already: every row survives with its values, but a free space EM reported
    as -1 (unknown), which becomes NULL like an unknown capacity; sources are NULL (not recorded then)."""
    from datetime import UTC, datetime

    from sqlalchemy import MetaData, func, insert

    from etl.simulator import World
    from helpers import truth_rows

    eng = db.engine(db_url)
    cfg = db.alembic_config()
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    old = MetaData()
    old.reflect(eng)
    assert "agent_restore_points" not in old.tables and "job_uid_source" not in old.tables["backups"].c
    truth = World(seed=5, servers=2, jobs=2, vms_per_job=3, days=3).truth()
    now = datetime(2025, 8, 15, 12, tzinfo=UTC)
    meta = {"source": "em", "first_loaded_at": now, "last_loaded_at": now, "run_id": 1}
    s3 = next(uid for uid, r in truth["repositories"].items() if r["kind"] == "AmazonS3Compatible")
    with eng.begin() as conn:
        conn.execute(
            insert(old.tables["etl_runs"]).values(
                id=1, source="em", started_at=now, status="succeeded", mode="full", rows_inserted=0,
                rows_updated=0, parents_from_links=0, requests=0, retries=0, quarantined=0, foreign_links=0,
            )
        )  # fmt: skip
        for name, rows in truth_rows(truth).items():
            if name not in old.tables or not rows:
                continue
            columns = {c.name for c in old.tables[name].columns}
            values = [{k: v for k, v in {**r, **meta}.items() if k in columns} for r in rows]
            for v in values:
                if name == "repositories" and v["uid"] == s3:
                    v["free_space"] = -1  # as 0002 stored what object storage reports
            conn.execute(insert(old.tables[name]), values)
        for i, uid in enumerate(truth["repositories"]):
            conn.execute(
                insert(old.tables["repository_space"]).values(
                    repository_uid=uid, run_id=1, source="em", observed_at=now, capacity=None if uid == s3 else i,
                    free_space=-1 if uid == s3 else i,
                )
            )  # fmt: skip
        conn.execute(
            insert(old.tables["etl_watermarks"]).values(
                source="em", entity_type="VmRestorePoint", backup_server_uid=next(iter(truth["backup_servers"])),
                watermark_utc=now, run_id=1, updated_at=now,
            )
        )  # fmt: skip
    tables = [n for n in old.tables if n not in ("alembic_version", "etl_migration_lock")]

    def rows(conn, name):  # the old columns, read with the typed schema (aware instants on SQLite too)
        columns = [schema.table(name).c[c.name] for c in old.tables[name].columns]
        key = [schema.table(name).c[c.name] for c in old.tables[name].primary_key.columns]
        return [dict(r._mapping) for r in conn.execute(select(*columns).order_by(*key))]

    with eng.connect() as conn:
        before = {name: rows(conn, name) for name in tables}
    empty = {n for n in tables if not before[n]}
    assert empty <= {"etl_locks", "etl_quarantine", "etl_sweeps"}, empty  # both sides are populated

    db.migrate(eng)

    assert db.current(eng) == db.head() and _diff(eng) == []
    with eng.connect() as conn:
        for name in tables:
            expected = before[name]
            if name in ("repositories", "repository_space"):
                expected = [
                    {**r, "free_space": None if r["free_space"] == -1 else r["free_space"]} for r in expected
                ]
            assert rows(conn, name) == expected, name
        assert conn.scalar(select(func.count()).select_from(schema.agent_restore_points)) == 0
        assert conn.scalar(select(func.count()).select_from(schema.etl_undocumented_values)) == 0
        for table in (schema.backups, schema.replicas):
            assert set(conn.scalars(select(table.c.job_uid_source))) == {None}
            assert conn.scalar(select(func.count()).where(table.c.job_uid.is_not(None))) > 0
        if eng.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    eng.dispose()


def test_upgrading_a_populated_0003_warehouse_keeps_every_row(db_url):
    """0004 adds etl_runs.refused (query types EM refused to the account) to the warehouse the
    revision before it left: every row of every table survives as it was, and the runs already
    recorded refused nothing (NULL)."""
    from datetime import UTC, datetime

    from sqlalchemy import MetaData, insert

    from etl.simulator import World
    from helpers import truth_rows

    eng = db.engine(db_url)
    cfg = db.alembic_config()
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    old = MetaData()
    old.reflect(eng)
    now = datetime(2025, 8, 15, 12, tzinfo=UTC)
    meta = {"source": "em", "first_loaded_at": now, "last_loaded_at": now, "run_id": 1}
    truth = World(seed=6, servers=2, jobs=2, vms_per_job=3, days=2).truth()
    with eng.begin() as conn:
        for run_id, status in ((1, "succeeded"), (2, "failed")):
            conn.execute(
                insert(old.tables["etl_runs"]).values(
                    id=run_id,
                    source="em",
                    started_at=now,
                    status=status,
                    mode="full",
                    **{  # every counter the revision has
                        c.name: 3
                        for c in old.tables["etl_runs"].columns
                        if not c.nullable and c.name not in ("id", "source", "started_at", "status", "mode")
                    },
                    error="EM answered 500" if status == "failed" else None,
                )
            )
        for name, table_rows in truth_rows(truth).items():
            columns = {c.name for c in old.tables[name].columns}
            values = [{k: v for k, v in {**meta, **r}.items() if k in columns} for r in table_rows]
            for v in values:
                if "placeholder" in columns:
                    v["placeholder"] = bool(v.get("placeholder"))
            if values:
                conn.execute(insert(old.tables[name]), values)

    def everything(conn) -> dict[str, list[tuple]]:
        out = {}
        for table in old.sorted_tables:
            if table.name == "alembic_version":
                continue
            key = list(table.primary_key.columns) or list(table.columns)
            out[table.name] = [tuple(r) for r in conn.execute(select(table).order_by(*key))]
        return out

    with eng.connect() as conn:
        before = everything(conn)
    assert sum(len(rows) for rows in before.values()) > 100

    db.migrate(eng)

    assert db.current(eng) == db.head() and _diff(eng) == []
    with eng.connect() as conn:
        assert everything(conn) == before
        assert conn.execute(select(schema.etl_runs.c.refused)).scalars().all() == [None, None]
    eng.dispose()


def test_upgrading_a_populated_0002_warehouse_keeps_every_run_and_reads_it_as_not_checked(db_url):
    """0005 adds what the completeness check records to etl_runs: every run recorded before keeps its
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


def test_upgrading_a_populated_0005_warehouse_keeps_every_row_and_comments_every_column(db_url):
    """0006 comments every table and column (PostgreSQL `COMMENT ON`; SQLite keeps none): every row of
    every table survives as it was, the catalog then holds exactly the comments etl.schema declares, and
    a downgrade takes them away again, rows untouched."""
    from datetime import UTC, datetime

    from sqlalchemy import MetaData, insert

    from etl.simulator import World
    from helpers import catalog_comments, declared_comments, truth_rows

    eng = db.engine(db_url)
    cfg = db.alembic_config()
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    old = MetaData()
    old.reflect(eng)
    now = datetime(2025, 8, 15, 12, tzinfo=UTC)
    truth = World(seed=7, servers=2, jobs=2, vms_per_job=3, days=2).truth()
    with eng.begin() as conn:
        conn.execute(
            insert(old.tables["etl_runs"]).values(
                id=1, source="em", started_at=now, finished_at=now, status="succeeded", mode="full",
                counts="{}", refused='[{"type": "Job", "role": "Portal Administrator"}]', verify_compared=12,
                verify_differing=1, verify_reloaded=3, verify_requests=4, host="h", pid=7,
                **{  # every counter the revision has
                    c.name: 3 for c in old.tables["etl_runs"].columns
                    if not c.nullable and c.name not in ("id", "source", "started_at", "status", "mode")
                },
            )
        )  # fmt: skip
        for name, table_rows in truth_rows(truth).items():
            columns = {c.name for c in old.tables[name].columns}
            values = [{k: v for k, v in {**schema.meta_values("em", 1, now), **r}.items() if k in columns}
                      for r in table_rows]  # fmt: skip
            for v in values:
                if "placeholder" in columns:
                    v["placeholder"] = bool(v.get("placeholder"))
            if values:
                conn.execute(insert(old.tables[name]), values)
        server = next(iter(truth["backup_servers"]))
        conn.execute(
            insert(old.tables["etl_watermarks"]).values(
                source="em", entity_type="BackupJobSession", backup_server_uid=server, watermark_utc=now,
                run_id=1, updated_at=now,
            )
        )  # fmt: skip
        conn.execute(insert(old.tables["etl_sweeps"]).values(source="em", swept_at=now, run_id=1))
        conn.execute(
            insert(old.tables["etl_quarantine"]).values(
                source="em", href="https://em/api/x", entity_type="Job", uid=None, error="bad", excerpt="<x",
                run_id=1, quarantined_at=now,
            )
        )  # fmt: skip
        conn.execute(
            insert(old.tables["etl_undocumented_values"]).values(
                entity_type="Repository", column_name="kind", value="AmazonS3Compatible", source="em", run_id=1,
                first_seen_at=now,
            )
        )  # fmt: skip
        conn.execute(
            insert(old.tables["repository_space"]).values(
                repository_uid=next(iter(truth["repositories"])), run_id=1, source="em", observed_at=now,
                capacity=None, free_space=5,
            )
        )  # fmt: skip

    def everything(conn) -> dict[str, list[tuple]]:
        out = {}
        for table in old.sorted_tables:
            if table.name != "alembic_version":
                key = list(table.primary_key.columns) or list(table.columns)
                out[table.name] = [tuple(r) for r in conn.execute(select(table).order_by(*key))]
        return out

    with eng.connect() as conn:
        before = everything(conn)
    assert all(before[name] for name in before if name != "etl_locks"), "every table but the lock holds rows"

    db.migrate(eng)

    assert db.current(eng) == db.head() and _diff(eng) == []
    with eng.connect() as conn:
        assert everything(conn) == before
        if eng.dialect.name == "postgresql":
            assert catalog_comments(conn) == declared_comments()
    with eng.begin() as conn:
        views.drop(conn)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    with eng.connect() as conn:
        assert everything(conn) == before
        if eng.dialect.name == "postgresql":
            assert set(catalog_comments(conn).values()) == {None}
    eng.dispose()
