"""The bodies recorded from real Enterprise Managers (tests/payloads/em-samples/) read into rows: every
column of every row checked against what the body says (golden rows), with the links naming parents.

Agent computers (their sessions, task and AgentRestorePoint), file-share (NAS) jobs and sessions,
object-storage repositories, a task already saying Success while it runs, and v12 copy and retry
sessions (em-samples/README.md says what the product must do with each).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from etl import crawl, parse, registry, transform
from etl.errors import NotFound

SAMPLES = Path(__file__).resolve().parents[1] / "payloads" / "em-samples"
API = "https://em01.example.local:9398/api"
SERVER = "urn:veeam:BackupServer:7445e6ce-0000-4171-b909-000000000001"
SERVER_LINK = ("Up", "BackupServerReference", f"{API}/backupServers/7445e6ce-0000-4171-b909-000000000001")


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def page(name: str, type_name: str) -> transform.Page:
    read = transform.read_page((SAMPLES / name).read_bytes(), registry.TYPES[type_name], f"{API}/query")
    assert read.quarantined == [] and read.paging == parse.Paging(1, 1, None)
    return read


def rows(read: transform.Page) -> list[dict]:
    return [dict(zip(read.rows.columns, values, strict=True)) for values in read.rows.values]


def session(uid: str, **row) -> dict:
    """A backup job session row: what every recorded session has in common, then `row`."""
    return {
        "uid": f"urn:veeam:BackupJobSession:{uid}",
        "href": f"{API}/backupSessions/{uid}?format=Entity",
        "backup_server_uid": SERVER,
        "parent_session_uid": None,
        "state": "Stopped",
        "result": "Success",
        "progress": 100,
        "is_retry": False,
        "failure_message": None,
        "placeholder": False,
        **row,
    }


def test_agent_job_sessions_parent_and_per_computer_child():
    read = page("query-agent-job-sessions.xml", "BackupJobSession")
    parent = "8ba90554-0000-4979-b4cc-000000000303"
    assert rows(read) == [
        session(
            parent,
            name="Agent Backup Job SQL@2025-06-16 05:00:00",
            job_uid="urn:veeam:Job:95f84a48-0000-459a-8f26-000000000301",
            job_name="Agent Backup Job SQL",
            job_type="AgentBackup",
            creation_time_utc=at(2025, 6, 16, 5, 0, 0, 200000),
            end_time_utc=at(2025, 6, 16, 5, 6, 40, 900000),
        ),
        session(
            "0e6b4c7d-0000-4ab9-94a7-000000000304",
            name="Agent Backup Job SQL - agent05.example.local@2025-06-16 05:00:16",
            job_uid="urn:veeam:Job:77dc8834-0000-4edf-8a0d-000000000302",
            parent_session_uid=f"urn:veeam:BackupJobSession:{parent}",
            job_name="Agent Backup Job SQL - agent05.example.local",
            job_type="AgentManagement",
            creation_time_utc=at(2025, 6, 16, 5, 0, 16, 400000),
            end_time_utc=at(2025, 6, 16, 5, 6, 31, 500000),
        ),
    ]
    # the jobs are named under /agents/jobs: the per-computer one is a job EM answers 404 for
    assert read.rows.link("job_uid", "urn:veeam:Job:77dc8834-0000-4edf-8a0d-000000000302").href == (
        f"{API}/agents/jobs/77dc8834-0000-4edf-8a0d-000000000302"
    )
    assert (
        read.rows.link("parent_session_uid", f"urn:veeam:BackupJobSession:{parent}").name == "Parent session"
    )


def test_agent_computer_task_names_the_computer_and_has_no_vm_uid():
    read = page("query-agent-task-session.xml", "BackupTaskSession")
    assert rows(read) == [
        {
            "uid": "urn:veeam:BackupTaskSession:5c8add49-0000-4147-bc38-000000000305",
            "href": f"{API}/backupTaskSessions/5c8add49-0000-4147-bc38-000000000305?format=Entity",
            "name": "agent05.example.local@2025-06-16 05:00:32",
            "job_session_uid": "urn:veeam:BackupJobSession:0e6b4c7d-0000-4ab9-94a7-000000000304",
            "backup_server_uid": SERVER,
            "vm_restore_point_uid": None,
            "vm_restore_point_link": None,
            "vm_uid": None,
            "vm_display_name": "agent05.example.local",
            "creation_time_utc": at(2025, 6, 16, 5, 0, 32, 100000),
            "end_time_utc": at(2025, 6, 16, 5, 6, 20, 800000),
            "state": "Completed",
            "result": "Success",
            "reason": None,
            "total_size": 53687091200,
        }
    ]


def test_agent_restore_point_with_its_computer_and_parents():
    read = page("query-agent-restore-points.xml", "AgentRestorePoint")
    assert read.rows.table == "agent_restore_points"
    assert rows(read) == [
        {
            "uid": "urn:veeam:AgentRestorePoint:b6bfce60-0000-46d7-9e55-000000000310",
            "href": f"{API}/agents/agentRestorePoints/b6bfce60-0000-46d7-9e55-000000000310?format=Entity",
            "name": "agent05.example.local@2025-06-16 05:00:33",
            "restore_point_uid": "urn:veeam:RestorePoint:67e4d9b0-0000-41e6-b5e8-000000000308",
            "backup_file_uid": "urn:veeam:BackupFile:0e2f90e9-0000-43fe-8279-000000000309",
            "backup_server_uid": SERVER,
            "computer_name": "agent05.example.local",  # = the task's VmDisplayName
            "creation_time_utc": at(2025, 6, 16, 5, 0, 33, 400000),
            "algorithm": "Incremental",
            "point_type": "Increment",
            "placeholder": False,
        }
    ]
    links = {column: read.rows.link(column, uid) for column, uid in rows(read)[0].items() if "_uid" in column}
    assert links["backup_server_uid"][:3] == SERVER_LINK
    assert links["restore_point_uid"].href == f"{API}/restorePoints/67e4d9b0-0000-41e6-b5e8-000000000308"
    assert links["backup_file_uid"].name == "Agent Backup Job SQL - agent05D2025-06-16T050032_2D7F.vib"


@pytest.mark.parametrize(
    "name,computer",
    [
        ("rhel72@2018-12-17 02:01:05", "rhel72"),
        ("odd@name@2025-06-16 05:00:33", "odd@name"),  # up to the last @: the time holds none
        ("no-time", "no-time"),
    ],
)
def test_computer_name_is_the_name_up_to_its_last_at(name, computer):
    body = (SAMPLES / "query-agent-restore-points.xml").read_bytes()
    body = body.replace(
        b'Name="agent05.example.local@2025-06-16 05:00:33" UID', f'Name="{name}" UID'.encode()
    )
    read = transform.read_page(body, registry.AGENT_RESTORE_POINT, "u")
    assert read.rows.column("computer_name") == [computer]


NAS_JOB = {
    "uid": "urn:veeam:Job:93dfbb3e-0000-45cf-addc-000000000501",  # as its sessions name it
    "href": f"{API}/nas/jobs/93dfbb3e-0000-45cf-addc-000000000501?format=Entity",
    "name": "Shared Files Backup",
    "backup_server_uid": SERVER,
    "job_type": None,  # a NASJob has no JobType and no Platform
    "platform": None,
    "description": "Backup of file share",
    "schedule_configured": True,
    "schedule_enabled": True,
    "next_run_utc": at(2025, 6, 17, 15, 0, 0),
    "placeholder": False,
}


def test_nas_job_entity_is_a_job_keyed_as_its_sessions_name_it():
    root = parse.document((SAMPLES / "nas-job-entity.xml").read_bytes(), "u")
    for entity_type in (registry.NAS_JOB, registry.JOB):  # its query, or a session's job link
        entities, quarantined = transform.read(root, entity_type, "u")
        assert quarantined == [] and [e.row for e in entities] == [NAS_JOB]
        assert entities[0].table == "jobs" and entities[0].parents["backup_server_uid"][:3] == SERVER_LINK


class Links:
    """The EM documents a link leads to, by href, as the client of a Fetcher (`Fetcher.parent` asks
    its client for them)."""

    def __init__(self, bodies: dict[str, str]):
        self.bodies = bodies
        self.asked: list[str] = []

    def document(self, href: str):
        self.asked.append(href)
        if href not in self.bodies:
            raise NotFound("not found", href)
        return parse.document((SAMPLES / self.bodies[href]).read_bytes(), href)


def test_nas_job_reference_leads_to_the_entity_from_a_sessions_job_link():
    ref = f"{API}/nas/jobs/93dfbb3e-0000-45cf-addc-000000000501"
    em = Links({ref: "nas-job-reference.xml", ref + "?format=Entity": "nas-job-entity.xml"})
    link = transform.read_page(
        (SAMPLES / "query-nas-backup-session.xml").read_bytes(), registry.BACKUP_JOB_SESSION, "u"
    ).rows.link("job_uid", NAS_JOB["uid"])
    assert link.href == ref
    fetcher = crawl.Fetcher(API, "demo", "pw")  # never entered: no logon, its client replaced
    fetcher.client = em
    got = fetcher.parent(link, registry.JOB)
    assert isinstance(got, transform.Entity) and got.row == NAS_JOB
    assert em.asked == [ref, ref + "?format=Entity"]  # the reference, then its Alternate (Type "Job")


def test_nas_backup_session():
    read = page("query-nas-backup-session.xml", "BackupJobSession")
    assert rows(read) == [
        session(
            "4f0d5c1e-0000-4b8e-8a2f-000000000502",
            name="Shared Files Backup@2025-06-16 15:00:04",
            job_uid=NAS_JOB["uid"],
            job_name="Shared Files Backup",
            job_type="NasBackup",
            creation_time_utc=at(2025, 6, 16, 15, 0, 4, 700000),
            end_time_utc=at(2025, 6, 16, 15, 3, 12, 200000),
        )
    ]


def test_object_storage_repository_has_unknown_capacity_and_free_space():
    read = page("query-repositories-object-storage.xml", "Repository")

    def repository(uid: str, name: str, kind: str, capacity, free) -> dict:
        return {
            "uid": f"urn:veeam:Repository:{uid}",
            "href": f"{API}/repositories/{uid}?format=Entity",
            "name": name,
            "backup_server_uid": SERVER,
            "kind": kind,
            "capacity": capacity,
            "free_space": free,
            "placeholder": False,
        }

    assert rows(read) == [
        repository(
            "425b6739-0000-4f7a-99fb-000000000101",
            "Default Backup Repository",
            "WindowsLocal",
            107355303936,
            86205259776,
        ),
        # Capacity and FreeSpace -1: unknown, NULL; a Kind EM documents nowhere, as sent
        repository(
            "33b9706c-0000-4775-abcd-000000000201", "s3_veeam_backup_z2", "AmazonS3Compatible", None, None
        ),
        # DD Boost reports petabytes: 64-bit sizes
        repository(
            "632abba3-0000-47ef-816e-000000000202",
            "ddb_veeam_ddh_h3_op",
            "DDBoost",
            1507629732986880,
            1386079723192320,
        ),
    ]
    assert "AmazonS3Compatible" not in registry.REPOSITORY.enums["kind"]  # warned about, once


def test_task_in_progress_already_saying_success_is_unfinished():
    read = page("query-task-inprogress-result-success.xml", "BackupTaskSession")
    assert rows(read) == [
        {
            "uid": "urn:veeam:BackupTaskSession:88767486-0000-4340-92f0-000000000602",
            "href": f"{API}/backupTaskSessions/88767486-0000-4340-92f0-000000000602?format=Entity",
            "name": "vm-3@2020-12-10 15:06:21",
            "job_session_uid": "urn:veeam:BackupJobSession:d46e39e0-0000-4585-91a7-000000000601",
            "backup_server_uid": SERVER,
            "vm_restore_point_uid": None,
            "vm_restore_point_link": None,
            "vm_uid": "urn:VMware:Vm:5b08bf82-0000-4cca-ac1a-000000000603.vm-13587",
            "vm_display_name": "vm-3",
            "creation_time_utc": at(2020, 12, 10, 15, 6, 21, 363000),
            "end_time_utc": None,
            "state": "InProgress",  # not Completed: read again until it is, whatever Result says
            "result": "Success",
            "reason": None,
            "total_size": 42949672960,
        }
    ]
    assert registry.BACKUP_TASK_SESSION.final_state == "Completed"


def test_v12_copy_parent_retry_with_six_restore_point_links_and_copy_worker():
    read = page("query-v12-copy-and-retry-sessions.xml", "BackupJobSession")
    worker_job = "COPY_OPER_WIN_S3\\BACKUP_DCP_C2_AGENTS_PRA_clone1 - host2.example.local"
    assert rows(read) == [
        session(
            "45f138d9-0000-4140-bd33-000000000704",
            name="COPY_BACKUP_VMW_MECM_AN_TO_DD_DCH_NEW@2026-06-14 23:09:26",
            job_uid="urn:veeam:Job:408829ea-0000-476c-80e1-000000000701",
            job_name="COPY_BACKUP_VMW_MECM_AN_TO_DD_DCH_NEW",
            job_type="ImmediateBackupCopy",
            creation_time_utc=at(2026, 6, 14, 23, 9, 26, 173000),
            end_time_utc=at(2026, 6, 15, 2, 4, 52, 37000),
            progress=0,  # a copy parent ends Stopped/Success with Progress 0: stored as sent
        ),
        session(
            "ee36521d-0000-4300-98ba-000000000705",
            name="BACKUP_DCH_C2_VMW_INF@2026-06-15 05:34:19",
            job_uid="urn:veeam:Job:b2c92f36-0000-4ce3-9bf6-000000000702",
            job_name="BACKUP_DCH_C2_VMW_INF",
            job_type="Backup",
            creation_time_utc=at(2026, 6, 15, 5, 34, 19, 503000),
            end_time_utc=at(2026, 6, 15, 6, 15, 49, 157000),
            is_retry=True,  # its six Related restore-point links are ignored
        ),
        session(
            "b83ad0b1-0000-49aa-9a45-000000000706",
            name=f"{worker_job}@2026-06-15 05:46:51",
            job_uid="urn:veeam:Job:86a540d1-0000-4dac-b06e-000000000703",
            job_name=worker_job,
            job_type="ImmediateBackupCopyWorker",
            creation_time_utc=at(2026, 6, 15, 5, 46, 51, 473000),
            end_time_utc=at(2026, 6, 15, 5, 47, 39, 700000),
        ),
    ]
    # the worker's job answers 404: recorded from this link
    worker = read.rows.link("job_uid", "urn:veeam:Job:86a540d1-0000-4dac-b06e-000000000703")
    assert (worker.href, worker.name) == (f"{API}/jobs/86a540d1-0000-4dac-b06e-000000000703", worker_job)
    assert set(read.rows.links) == {"backup_server_uid", "job_uid"}
