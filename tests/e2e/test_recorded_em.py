"""The loader against bodies recorded from real Enterprise Managers (tests/payloads/em-samples/),
served by tests/replay.py over a real loopback socket: what em-samples/README.md says the product
must do with each."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from replay import Replay
from sqlalchemy import select

from etl import db, schema
from helpers import cli

SERVER = "urn:veeam:BackupServer:7445e6ce-0000-4171-b909-000000000001"
WAITING = "urn:veeam:ReplicaJobSession:90e440bb-0000-4e3f-8022-000000000002"


def run(em: Replay, db_url: str):
    return cli("run", "--url", em.url, "--user", "demo", "--db", db_url, password="demo")


def rows(db_url: str, table) -> dict[str, dict]:
    eng = db.engine(db_url)
    try:
        with eng.connect() as conn:
            return {r["uid"]: dict(r) for r in conn.execute(select(table)).mappings()}
    finally:
        eng.dispose()


@pytest.mark.parametrize(
    "body,found",
    [
        ("querysvc-menu.xml", "<QuerySvc>"),  # what /querySvc answers whatever it is asked
        ("query-references-page.xml", "<Refs>"),
    ],
)
def test_a_page_of_the_wrong_shape_fails_the_run_loudly(body, found, tmp_path):
    with Replay({"BackupServer": body}) as em:
        done = run(em, f"sqlite:///{tmp_path}/w.db")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr and last.startswith("veeam-etl: error: "), done.stderr
    assert found in last and "/api/query?type=BackupServer" in last, last
    eng = db.engine(f"sqlite:///{tmp_path}/w.db")
    with eng.connect() as conn:
        assert conn.scalars(select(schema.etl_runs.c.status)).all() == ["failed"]
    eng.dispose()


def test_an_em_error_body_names_the_url_and_ems_message(tmp_path):
    with Replay({"BackupServer": (500, "error-500.xml")}) as em:
        done = cli(
            "run", "--url", em.url, "--user", "demo", "--db", f"sqlite:///{tmp_path}/w.db", "--retries", "2"
        )
    assert done.returncode == 1
    assert "Object reference not set to an instance of an object" in done.stderr
    assert "/api/query?type=BackupServer" in done.stderr


def test_queries_go_to_the_query_endpoint_never_to_the_querysvc_menu(tmp_path):
    with Replay({"BackupServer": "backup-server-v13.xml"}) as em:
        assert run(em, f"sqlite:///{tmp_path}/w.db").returncode == 0
        paths = {r.path for r in em.requests if r.method == "GET"}
    assert "/api/query" in paths and not any("querysvc" in p.lower() for p in paths)


def test_recorded_v13_bodies_load_exactly(db_url):
    queries = {
        "BackupServer": "backup-server-v13.xml",
        "ReplicaJobSession": "query-replica-job-session-waiting-repository.xml",
        "ReplicaTaskSession": "query-task-sessions-v13-extras.xml",
    }
    with Replay(queries) as em:
        done = run(em, db_url)
        assert done.returncode == 0, done.stderr
        origin = em.url.removesuffix("/api")
    server = rows(db_url, schema.backup_servers)[SERVER]
    assert {k: server[k] for k in ("name", "description", "port", "version", "wcf_port", "placeholder")} == {
        "name": "vbr01.example.local",
        "description": None,  # <Description /> is no description
        "port": 443,
        "version": "13.0.1.2067",
        "wcf_port": 9405,
        "placeholder": False,
    }
    assert server["vbr_certificate_thumbprint"] == "0123456789ABCDEF0123456789ABCDEF01234567"
    task = rows(db_url, schema.replica_task_sessions)[
        "urn:veeam:ReplicaTaskSession:efe448ad-0000-496b-ba79-000000000003"
    ]
    assert task == task | {
        "href": f"{origin}/api/replicaTaskSessions/efe448ad-0000-496b-ba79-000000000003?format=Entity",
        "job_session_uid": WAITING,
        "backup_server_uid": SERVER,
        "replica_point_uid": "urn:veeam:VmReplicaPoint:81aba862-0000-4269-8dfe-000000000004",
        "name": "apache02@2026-06-16 06:22:59.39912",
        "vm_display_name": "apache02",
        "creation_time_utc": datetime(2026, 6, 16, 6, 22, 59, 399120, tzinfo=UTC),
        "end_time_utc": datetime(2026, 6, 16, 6, 23, 52, 728467, tzinfo=UTC),
        "state": "Completed",
        "result": "Failed",
        "total_size": 8589934592,
    }
    assert task["reason"].startswith("Processing apache02 Error: An error occurred while quiescing")
    # the point the Related link names is not served (404): recorded from the link, the task kept
    point = rows(db_url, schema.vm_replica_points)[task["replica_point_uid"]]
    assert point["placeholder"] is True and point["name"] == "apache02@2025-06-17 20:02:30"


def test_an_undocumented_state_is_stored_as_sent_and_read_again_until_it_finishes(db_url):
    queries = {
        "BackupServer": "backup-server-v13.xml",
        "ReplicaJobSession": "query-replica-job-session-waiting-repository.xml",
    }
    with Replay(queries) as em:
        first = run(em, db_url)
        assert first.returncode == 0, first.stderr
        # warned about once, counted in the summary and the run record: not a state EM documents
        assert first.stderr.count("'WaitingRepository' is not a value EM documents") == 1, first.stderr
        assert "undocumented values: 1" in first.stdout
        eng = db.engine(db_url)
        with eng.connect() as conn:
            assert conn.scalars(select(schema.etl_runs.c.new_values)).all() == [1]
        eng.dispose()
        session = rows(db_url, schema.replica_job_sessions)[WAITING]
        assert (session["state"], session["result"], session["end_time_utc"]) == (
            "WaitingRepository",
            "None",
            None,
        )
        em.requests.clear()
        second = run(em, db_url)
        assert second.returncode == 0, second.stderr
        asked = [r.query.get("filter", "") for r in em.queried("ReplicaJobSession")]
    # the next run asks for it again: unfinished is any State but Stopped, written bare
    assert any("State!=Stopped" in f for f in asked), asked
    assert rows(db_url, schema.replica_job_sessions)[WAITING]["state"] == "WaitingRepository"


def test_an_entity_is_known_by_its_type_attribute_whatever_its_element_is_named(tmp_path):
    url = f"sqlite:///{tmp_path}/w.db"
    with Replay(
        {"BackupServer": "backup-server-v13.xml", "ReplicaJobSession": "query-element-name-not-type.xml"}
    ) as em:
        assert run(em, url).returncode == 0
    assert rows(url, schema.replica_job_sessions)[WAITING]["state"] == "Stopped"


def test_an_empty_result_in_either_recorded_shape_is_zero_rows_and_success(tmp_path):
    url = f"sqlite:///{tmp_path}/w.db"
    with Replay({"BackupServer": "query-empty-list.xml"}, empty="query-empty-list.xml") as em:
        assert run(em, url).returncode == 0
    with Replay({"BackupServer": "query-empty-entities.xml"}) as em:
        assert run(em, url).returncode == 0
    assert rows(url, schema.backup_servers) == {}
