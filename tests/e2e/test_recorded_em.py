"""The loader against bodies recorded from real Enterprise Managers (tests/payloads/em-samples/),
served by tests/replay.py over a real loopback socket: what em-samples/README.md says the product
must do with each."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from replay import Replay
from sqlalchemy import select

from etl import db, report, schema
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


AGENT = "agent05.example.local"


def test_recorded_agent_computer_is_one_machine_judged_by_its_agent_restore_point(db_url):
    """EM's agent bodies (em-samples/query-agent-*.xml): the parent and per-computer sessions, the
    computer's task and its AgentRestorePoint load; the task and the point are one machine."""
    queries = {
        "BackupServer": "backup-server-v13.xml",
        "BackupJobSession": "query-agent-job-sessions.xml",
        "BackupTaskSession": "query-agent-task-session.xml",
        "AgentRestorePoint": "query-agent-restore-points.xml",
    }
    with Replay(queries) as em:
        done = run(em, db_url)
        assert done.returncode == 0, done.stderr
        asked = {r.path for r in em.requests if r.method == "GET"}
    point = rows(db_url, schema.agent_restore_points)[
        "urn:veeam:AgentRestorePoint:b6bfce60-0000-46d7-9e55-000000000310"
    ]
    assert (point["computer_name"], point["backup_server_uid"], point["placeholder"]) == (
        AGENT,
        SERVER,
        False,
    )
    # its restore point and file are not served here (404): recorded from the point's links
    parent = rows(db_url, schema.restore_points)[point["restore_point_uid"]]
    assert parent["placeholder"] and parent["name"] == "Jun 16 2025  5:00AM"
    assert "/api/restorePoints/67e4d9b0-0000-41e6-b5e8-000000000308" in asked
    eng = db.engine(db_url)
    with eng.connect() as conn:
        (machine,) = report.read_view(conn, "v_vm_backup_status")
    eng.dispose()
    assert (machine["kind"], machine["vm_key"], machine["keyed_by"]) == ("agent", AGENT, "computer_name")
    assert (machine["tasks"], machine["restore_points"], machine["last_result"]) == (1, 1, "Success")
    assert machine["newest_point_utc"] == datetime(2025, 6, 16, 5, 0, 33, 400000, tzinfo=UTC)
    assert machine["last_job_name"] == "Agent Backup Job SQL"  # the agent job, not the per-computer one


def test_recorded_file_share_session_gets_its_job_from_the_nas_link(db_url):
    """A NasBackup session (em-samples/query-nas-backup-session.xml) whose job the NasJob query did not
    list: the session's link to /nas/jobs leads to the reference, whose Alternate leads to the
    `<NASJob>` entity: a real job row, not a placeholder."""
    job = "/api/nas/jobs/93dfbb3e-0000-45cf-addc-000000000501"
    with Replay(
        {"BackupServer": "backup-server-v13.xml", "BackupJobSession": "query-nas-backup-session.xml"},
        routes={job: "nas-job-reference.xml", f"{job}?format=Entity": "nas-job-entity.xml"},
    ) as em:
        done = run(em, db_url)
        assert done.returncode == 0, done.stderr
        assert any(r.query.get("type", "").lower() == "nasjob" for r in em.queried())
    session = rows(db_url, schema.backup_job_sessions)[
        "urn:veeam:BackupJobSession:4f0d5c1e-0000-4b8e-8a2f-000000000502"
    ]
    row = rows(db_url, schema.jobs)[session["job_uid"]]
    assert (row["placeholder"], row["name"], row["description"]) == (
        False,
        "Shared Files Backup",
        "Backup of file share",
    )
    assert (row["job_type"], row["schedule_enabled"]) == (None, True)
    assert row["next_run_utc"] == datetime(2025, 6, 17, 15, tzinfo=UTC)


def test_recorded_object_storage_repository_has_unknown_space_and_is_warned_about_once(db_url):
    queries = {"BackupServer": "backup-server-v13.xml", "Repository": "query-repositories-object-storage.xml"}
    with Replay(queries) as em:
        first = run(em, db_url)
        second = run(em, db_url)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert first.stderr.count("'AmazonS3Compatible' is not a value EM documents") == 1
    assert "is not a value EM documents" not in second.stderr
    repos = {r["name"]: r for r in rows(db_url, schema.repositories).values()}
    s3 = repos["s3_veeam_backup_z2"]
    assert (s3["kind"], s3["capacity"], s3["free_space"]) == ("AmazonS3Compatible", None, None)
    space = [r for r in rows_of(db_url, schema.repository_space) if r["repository_uid"] == s3["uid"]]
    assert len(space) == 2 and all(r["capacity"] is None and r["free_space"] is None for r in space)
    assert repos["ddb_veeam_ddh_h3_op"]["capacity"] == 1507629732986880


def rows_of(db_url: str, table) -> list[dict]:
    eng = db.engine(db_url)
    try:
        with eng.connect() as conn:
            return [dict(r) for r in conn.execute(select(table)).mappings()]
    finally:
        eng.dispose()
