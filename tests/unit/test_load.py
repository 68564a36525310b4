"""etl.load: upsert keyed by uid, counts that mean something, placeholders, foreign keys — on both databases."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from etl import db, runs, schema, transform
from etl.errors import LoadError
from etl.load import Loader

T0 = datetime(2025, 8, 15, 6, 0, tzinfo=UTC)


@pytest.fixture
def eng(db_url):
    e = db.engine(db_url)
    db.migrate(e)
    yield e
    e.dispose()


def server(uid="urn:veeam:BackupServer:1", **kw):
    row = {
        "uid": uid,
        "href": "/api/backupServers/1",
        "name": "vbr01",
        "description": None,
        "port": 9392,
        "version": "12.1",
        "wcf_port": None,
        "vbr_certificate_thumbprint": None,
        "placeholder": False,
    }
    row.update(kw)
    return row


def job(uid="urn:veeam:ReplicaJobSession:1", **kw):
    row = {
        "uid": uid,
        "href": "/api/replicaSessions/1",
        "backup_server_uid": "urn:veeam:BackupServer:1",
        "job_uid": None,  # a job the warehouse has no row for would break the foreign key
        "job_name": "J",
        "job_type": "Replica",
        "name": "J@x",
        "creation_time_utc": T0,
        "end_time_utc": None,
        "state": "Working",
        "result": "None",
        "progress": 10,
        "is_retry": False,
        "failure_message": None,
        "placeholder": False,
    }
    row.update(kw)
    return row


def rows_of(table):
    return lambda dicts: transform.table_rows(table.name, dicts)


backup_servers, replica_job_sessions, replica_task_sessions = (
    rows_of(schema.backup_servers),
    rows_of(schema.replica_job_sessions),
    rows_of(schema.replica_task_sessions),
)


def loader(conn, eng, source="s"):
    run_id = runs.start_run(eng, source, "full")
    return Loader(conn, source, run_id, datetime.now(UTC))


def test_insert_update_nochange_counts(eng):
    with eng.begin() as conn:
        ld = loader(conn, eng)
        assert ld.upsert(backup_servers([server()])) == (1, 0)
        assert ld.upsert(replica_job_sessions([job(), job()])) == (1, 0)  # duplicate key sent once
    with eng.begin() as conn:
        ld = loader(conn, eng)
        assert ld.upsert(replica_job_sessions([job()])) == (0, 0)
        finished = job(
            end_time_utc=datetime(2025, 8, 15, 7, 0, 0, 123456, tzinfo=UTC),
            state="Stopped",
            result="Success",
            progress=100,
        )
        assert ld.upsert(replica_job_sessions([finished])) == (0, 1)
        second_run = ld.run_id
    with eng.connect() as conn:
        row = conn.execute(select(schema.replica_job_sessions)).mappings().one()
    assert row["end_time_utc"] == finished["end_time_utc"] and row["end_time_utc"].tzinfo is not None
    assert row["run_id"] == second_run and row["first_loaded_at"] <= row["last_loaded_at"]


def test_big_sizes_survive(eng):
    with eng.begin() as conn:
        ld = loader(conn, eng)
        ld.upsert(backup_servers([server()]))
        ld.upsert(replica_job_sessions([job()]))
        task = {
            "uid": "urn:veeam:ReplicaTaskSession:1",
            "href": "h",
            "job_session_uid": job()["uid"],
            "backup_server_uid": None,
            "replica_point_uid": None,
            "name": "vm@x",
            "vm_display_name": "vm",
            "creation_time_utc": T0,
            "end_time_utc": None,
            "state": "InProgress",
            "result": "None",
            "reason": None,
            "total_size": 2**62 + 5,
        }
        ld.upsert(replica_task_sessions([task]))
    with eng.connect() as conn:
        assert conn.scalar(select(schema.replica_task_sessions.c.total_size)) == 2**62 + 5


def test_placeholder_never_overwrites_and_is_replaced_by_real(eng):
    with eng.begin() as conn:
        ld = loader(conn, eng)
        ld.upsert(backup_servers([server()]))
        stub = {"uid": server()["uid"], "href": "/link", "name": "from-link", "placeholder": True}
        assert ld.upsert(backup_servers([stub])) == (0, 0)
        stub2 = {"uid": "urn:veeam:BackupServer:2", "href": "/link2", "name": "gone", "placeholder": True}
        assert ld.upsert(backup_servers([stub2])) == (1, 0)
        assert ld.upsert(backup_servers([server(uid=stub2["uid"], name="back")])) == (0, 1)
    with eng.connect() as conn:
        rows = {r.uid: r for r in conn.execute(select(schema.backup_servers))}
    assert rows[server()["uid"]].name == "vbr01" and rows[stub2["uid"]].placeholder is False


def test_foreign_keys_enforced(eng):
    with (
        pytest.raises(LoadError, match="replica_job_sessions.*(FOREIGN KEY|foreign key)"),
        eng.begin() as conn,
    ):
        loader(conn, eng).upsert(replica_job_sessions([job(backup_server_uid="urn:veeam:BackupServer:nope")]))


def test_rows_in_any_column_order_and_shape(eng):
    """The loader maps rows to its columns by name: another order, or columns missing (NULL)."""
    with eng.begin() as conn:
        ld = loader(conn, eng)
        ld.upsert(transform.table_rows("backup_servers", [dict(reversed(server().items()))]))
        ld.upsert(
            transform.table_rows("backup_servers", [{"uid": "urn:veeam:BackupServer:2", "placeholder": True}])
        )
    with eng.connect() as conn:
        got = conn.execute(
            select(
                schema.backup_servers.c.uid, schema.backup_servers.c.port, schema.backup_servers.c.name
            ).order_by("uid")
        ).all()
    assert got == [("urn:veeam:BackupServer:1", 9392, "vbr01"), ("urn:veeam:BackupServer:2", None, None)]


def test_sqlite_instants_are_utc_text_whatever_the_zone():
    from datetime import timedelta, timezone

    from etl.load import _sqlite_value

    at = datetime(2025, 8, 15, 6, 0, 1, 20, tzinfo=UTC)
    assert _sqlite_value(at) == "2025-08-15 06:00:01.000020"
    assert _sqlite_value(at.astimezone(timezone(timedelta(hours=2)))) == _sqlite_value(at)
    assert (_sqlite_value(True), _sqlite_value(None), _sqlite_value(7)) == (1, None, 7)
