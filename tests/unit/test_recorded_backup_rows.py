"""The backup-side reference bodies (tests/payloads/backup/, Veeam's EM REST examples quoted in
em-backup-side.md; its README says where each comes from) read with the product's transform into rows:
every column of every row checked against values written by hand from the body (golden rows), with
the links that name the parents.

A row holds every column of its table but the load metadata (etl.load's), the retention mark (the
sweep's) and what the entity does not say (a backup's or replica's job: the loader works it out later).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from etl import parse, registry, schema, transform
from etl.load import data_columns
from etl.parse import Link

BODIES = Path(__file__).resolve().parents[1] / "payloads" / "backup"
EM = "https://em.example.test:9398/api"  # the host of the 13.0 pages (jobs, sessions)
LOCAL = "https://localhost:9398/api"  # the host of the 13.1 query examples
SERVER = "urn:veeam:BackupServer:7445e6ce-86f5-4171-b909-dac209c66563"  # vbr01 of the 13.1 examples
SERVER_LINK = Link(
    "Up",
    "BackupServerReference",
    f"{LOCAL}/backupServers/7445e6ce-86f5-4171-b909-dac209c66563",
    "vbr01.example.test",
)


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def read(name: str, entity_type: registry.EntityType) -> transform.Entity:
    """The one entity of a body whose root is the entity itself, read as Fetcher.parent reads one."""
    url = f"{EM}/{name}"
    entities, quarantined = transform.read(
        parse.document((BODIES / name).read_bytes(), url), entity_type, url
    )
    assert quarantined == [] and len(entities) == 1
    entity = entities[0]
    assert entity.table == entity_type.table
    assert set(entity.row) == _columns_from_em(entity_type.table), "a column is missing from the row or extra"
    return entity


# What no backup-side entity says: the job of a backup or replica (the loader works it out later).
NOT_IN_THE_ENTITY = {"backups": {"job_uid", "job_uid_source"}, "replicas": {"job_uid", "job_uid_source"}}


def _columns_from_em(table: str) -> set[str]:
    """The columns a row read from EM carries: every data column of its table but the retention mark and
    what the entity does not say."""
    return set(data_columns(schema.table(table))) - {"deleted_at"} - NOT_IN_THE_ENTITY.get(table, set())


READ_HERE = {
    "agent-backup-job.xml",
    "agent-management-session-ref.xml",
    "backup-child.xml",
    "backup-file.xml",
    "backup-job-session.xml",
    "backup-task-session-success.xml",
    "backup-task-session.xml",
    "job-immediate-copy.xml",
    "job.xml",
    "replica.xml",
    "repository.xml",
    "restore-point.xml",
    "vm-restore-point.xml",
}


def test_every_body_is_read_here():
    """A body added to tests/payloads/backup/ gets its golden rows here too."""
    assert {p.name for p in BODIES.glob("*.xml")} == READ_HERE


JOB_BACKUP_SERVER = Link(
    "Up",
    "BackupServerReference",
    f"{EM}/backupServers/d1444f74-27e6-4399-81a9-d28ba98913f0",
    "vbr01.example.test",
)


def test_backup_job():
    job = read("job.xml", registry.JOB)
    assert job.row == {
        "uid": "urn:veeam:Job:5658281f-625e-4627-89dd-d2a0c48be99e",
        "href": f"{EM}/jobs/5658281f-625e-4627-89dd-d2a0c48be99e?format=Entity",
        "name": "DB Backup",
        "backup_server_uid": "urn:veeam:BackupServer:d1444f74-27e6-4399-81a9-d28ba98913f0",
        "job_type": "Backup",
        "platform": "HyperV",
        "description": "Backup of MS SQL Server DB",
        "schedule_configured": True,
        "schedule_enabled": True,
        "next_run_utc": at(2020, 2, 1, 17, 0, 0),
        "placeholder": False,
    }  # the schedule options and the job's VMs (JobScheduleOptions, JobInfo) are left out
    assert job.parents == {"backup_server_uid": JOB_BACKUP_SERVER}


def test_immediate_copy_job_has_no_next_run():
    job = read("job-immediate-copy.xml", registry.JOB)
    assert job.row == {
        "uid": "urn:veeam:Job:5adf6525-51d9-48b9-a72d-7f80701c714b",
        "href": f"{EM}/jobs/5adf6525-51d9-48b9-a72d-7f80701c714b?format=Entity",
        "name": "Immediate Backup Copy Job",
        "backup_server_uid": "urn:veeam:BackupServer:3cbab7db-fa0d-4c18-82b6-bc1816f0a128",
        "job_type": "ImmediateBackupCopy",
        "platform": "CustomPlatform",
        "description": "Created by .\\veeamadmin",
        "schedule_configured": True,
        "schedule_enabled": True,
        "next_run_utc": None,  # a copy job sends no NextRun (em-backup-side.md §7)
        "placeholder": False,
    }
    assert job.parents == {
        "backup_server_uid": Link(
            "Up",
            "BackupServerReference",
            f"{EM}/backupServers/3cbab7db-fa0d-4c18-82b6-bc1816f0a128",
            "vbr01.example.test",
        )
    }


@pytest.mark.parametrize("entity_type", [registry.AGENT_BACKUP_JOB, registry.JOB])
def test_agent_backup_job_is_keyed_as_its_sessions_name_it(entity_type):
    """Read by its own query type or reached from a session's job link (a `Job`, `also` AgentBackupJob)."""
    job = read("agent-backup-job.xml", entity_type)
    assert job.row == {
        "uid": "urn:veeam:Job:a6deb158-b26c-4140-8b26-5a3cc344e8ec",  # not urn:veeam:AgentBackupJob:…
        "href": f"{EM}/agents/jobs/a6deb158-b26c-4140-8b26-5a3cc344e8ec?format=Entity",
        "name": "Server Backup",
        "backup_server_uid": "urn:veeam:BackupServer:d1444f74-27e6-4399-81a9-d28ba98913f0",
        "job_type": "AgentBackup",
        "platform": "AgentForWindows",
        "description": "Backup of physical server",
        "schedule_configured": True,
        "schedule_enabled": True,
        "next_run_utc": at(2025, 2, 12, 15, 0, 0),
        "placeholder": False,
    }
    assert job.parents == {"backup_server_uid": JOB_BACKUP_SERVER}


def test_copy_worker_retry_session_from_a_query_page():
    url = f"{EM}/query?type=BackupJobSession"
    page = transform.read_page(
        (BODIES / "backup-job-session.xml").read_bytes(), registry.BACKUP_JOB_SESSION, url
    )
    assert page.quarantined == [] and page.paging == parse.Paging(1, 1, None)
    assert set(page.rows.columns) == _columns_from_em("backup_job_sessions")
    job_name = "Periodic Backup Copy Job\\Backup Job 1"
    assert [dict(zip(page.rows.columns, values, strict=True)) for values in page.rows.values] == [
        {
            "uid": "urn:veeam:BackupJobSession:07fb4019-dc8c-45ba-a36f-d15f2e7fe41b",
            "href": f"{EM}/backupSessions/07fb4019-dc8c-45ba-a36f-d15f2e7fe41b?format=Entity",
            "name": f"{job_name}@2025-08-16 05:17:38.22142",
            "backup_server_uid": "urn:veeam:BackupServer:a0c8ea55-8bd4-49fe-9095-927d7bddddc3",
            "job_uid": "urn:veeam:Job:643e7958-f608-41fd-932c-084596f5b44f",
            # its Alternate link has the parent link's Type, but it is no parent: only `Up` is
            "parent_session_uid": None,
            "job_name": job_name,
            "job_type": "ImmediateBackupCopyWorker",
            "creation_time_utc": at(2025, 8, 16, 5, 17, 38, 221420),
            "end_time_utc": at(2025, 8, 16, 5, 25, 1, 879599),
            "state": "Stopped",
            "result": "Failed",
            "progress": 100,
            "is_retry": True,
            "failure_message": None,  # no FailureMessage element
            "placeholder": False,
        }
    ]
    uid = "urn:veeam:Job:643e7958-f608-41fd-932c-084596f5b44f"
    assert page.rows.link("job_uid", uid) == Link(
        "Up", "JobReference", f"{EM}/jobs/643e7958-f608-41fd-932c-084596f5b44f", job_name
    )
    assert set(page.rows.links) == {"backup_server_uid", "job_uid"}


def test_agent_management_session_reference_is_no_row_but_names_its_parents():
    """EM's `agentManagementSessions` list holds references, not sessions: the product reads no session
    row from it (the entity, read by the query, is em-samples' query-agent-job-sessions.xml). Its links
    are the child session's: read as the loader reads a session's parents, they name the parent
    session, the per-computer job (EM answers 404 for it) and the backup server; each is what the
    warehouse records from the link when EM will not give the object (a placeholder row)."""
    url = "http://em.example.test:9399/api/backupSessions/8ba90554-4cb0-4979-b4cc-00887fcd1caa/agentManagementSessions"
    root = parse.document((BODIES / "agent-management-session-ref.xml").read_bytes(), url)
    assert transform.read(root, registry.BACKUP_JOB_SESSION, url) == ([], [])
    (ref,) = root
    _, links = parse.content(ref)
    placeholders = {}
    for parent in registry.BACKUP_JOB_SESSION.parents:
        link = parent.link(links)
        assert link is not None, parent.column
        placeholders[parent.column] = transform.placeholder(
            link, parse.uid_from_href(link.href, parent.type_name)
        )
    em = "http://em.example.test:9399/api"
    assert placeholders == {
        "backup_server_uid": {
            "uid": "urn:veeam:BackupServer:8c88c6d6-931f-4044-8c0b-7a0c5f188b00",
            "href": f"{em}/backupServers/8c88c6d6-931f-4044-8c0b-7a0c5f188b00",
            "name": "vbr01.example.test",
            "placeholder": True,
        },
        "job_uid": {  # under /agents/jobs, keyed as sessions name jobs
            "uid": "urn:veeam:Job:77dc8834-2102-4edf-8a0d-aba909b2d1ed",
            "href": f"{em}/agents/jobs/77dc8834-2102-4edf-8a0d-aba909b2d1ed",
            "name": "Agent Backup Job SQL - sql12ten.local",
            "placeholder": True,
        },
        "parent_session_uid": {
            "uid": "urn:veeam:BackupJobSession:8ba90554-4cb0-4979-b4cc-00887fcd1caa",
            "href": f"{em}/backupSessions/8ba90554-4cb0-4979-b4cc-00887fcd1caa",
            "name": "Parent session",
            "placeholder": True,
        },
    }
    for parent in registry.BACKUP_JOB_SESSION.parents:  # each a row of its parent's table
        table = schema.table(registry.TYPES[parent.type_name].table)
        assert set(placeholders[parent.column]) <= set(data_columns(table)), parent.column


TASK = {
    "uid": "urn:veeam:BackupTaskSession:38ceb150-e0a8-4f87-8a17-243afc1b98f4",
    "href": f"{LOCAL}/backupTaskSessions/38ceb150-e0a8-4f87-8a17-243afc1b98f4?format=Entity",
    "name": "dbserver01@2025-06-05 01:04:29",
    "job_session_uid": "urn:veeam:BackupJobSession:35c24055-bdee-4e43-b655-a42de408d2ec",
    "backup_server_uid": SERVER,
    "vm_display_name": "dbserver01",
    "vm_uid": "urn:VMware:Vm:de28dc43-b8ee-4e17-8e63-3d38b6604033.vm-62228",  # = the point's HierarchyObjRef
    "state": "Completed",
}
TASK_PARENTS = {
    "job_session_uid": Link(
        "Up",
        "BackupJobSessionReference",
        f"{LOCAL}/backupSessions/35c24055-bdee-4e43-b655-a42de408d2ec",
        "Backup Job 1@2025-06-05 01:03:37",
    ),
    "backup_server_uid": SERVER_LINK,
}


def test_failed_backup_task_has_no_restore_point():
    task = read("backup-task-session.xml", registry.BACKUP_TASK_SESSION)
    assert task.row == {
        **TASK,
        "vm_restore_point_uid": None,  # EM gives no Related link: the loader may infer one later
        "vm_restore_point_link": None,
        "creation_time_utc": at(2025, 6, 5, 1, 4, 29, 560000),
        "end_time_utc": at(2025, 6, 5, 1, 4, 44, 530000),
        "result": "Failed",
        "reason": "Error: There is not enough space on the disk. Failed to write data to the file "
        "[C:\\Backup\\Backup Job 1\\Backup Job 1D2025-06-05T030355_06C7.vib]. …",
        "total_size": 0,  # failed tasks report 0 (em-backup-side.md §2)
    }
    assert task.parents == TASK_PARENTS


def test_successful_backup_task_links_its_vm_restore_point():
    task = read("backup-task-session-success.xml", registry.BACKUP_TASK_SESSION)
    assert task.row == {
        **TASK,
        "vm_restore_point_uid": "urn:veeam:VmRestorePoint:fb87163e-687d-4006-96c9-0451b5423b85",
        "vm_restore_point_link": "link",  # EM's Related link, not an inference
        "creation_time_utc": at(2014, 10, 19, 5, 23, 44),
        "end_time_utc": at(2014, 10, 19, 5, 40, 39),
        "result": "Success",
        "reason": None,  # <Reason />
        "total_size": 64424509440,  # 60 GiB: the VM's source size
    }
    assert task.parents == {
        **TASK_PARENTS,
        "vm_restore_point_uid": Link(
            "Related",
            "VmRestorePoint",
            f"{LOCAL}/vmRestorePoints/fb87163e-687d-4006-96c9-0451b5423b85?format=Entity",
            "srv04@2014-10-19 05:25:15",
        ),
    }


def test_vm_restore_point():
    point = read("vm-restore-point.xml", registry.VM_RESTORE_POINT)
    assert point.row == {
        "uid": "urn:veeam:VmRestorePoint:f45e5f83-99a0-4b8e-9195-9f88ee13da07",
        "href": f"{LOCAL}/vmRestorePoints/f45e5f83-99a0-4b8e-9195-9f88ee13da07?format=Entity",
        "name": "dbserver01@2025-06-16 04:00:52",
        "restore_point_uid": "urn:veeam:RestorePoint:94ebd136-e5e0-4ebf-8e89-c37269132c28",
        "backup_file_uid": "urn:veeam:BackupFile:499ea31b-d576-4c31-b458-fd8dcd3b5e96",
        "backup_server_uid": SERVER,
        "vm_display_name": "dbserver01",
        "vm_name": "dbserver01",
        "hierarchy_obj_ref": "urn:VMware:Vm:de28dc43-b8ee-4e17-8e63-3d38b6604033.vm-62228",
        "creation_time_utc": at(2025, 6, 16, 4, 0, 52, 107000),
        "algorithm": "Incremental",
        "point_type": "Increment",
        "placeholder": False,
    }
    assert point.parents == {
        "restore_point_uid": Link(
            "Up",
            "RestorePointReference",
            f"{LOCAL}/restorePoints/94ebd136-e5e0-4ebf-8e89-c37269132c28",
            "Jun 16 2025  4:00AM",
        ),
        "backup_file_uid": Link(
            "Up",
            "BackupFileReference",
            f"{LOCAL}/backupFiles/499ea31b-d576-4c31-b458-fd8dcd3b5e96",
            "Backup Job 1D2025-06-16T060031_8B0A.vib",
        ),
        "backup_server_uid": SERVER_LINK,
    }


def test_restore_point_keeps_its_date_name_as_sent():
    point = read("restore-point.xml", registry.RESTORE_POINT)
    assert point.row == {
        "uid": "urn:veeam:RestorePoint:f22db071-39ba-4ca5-a492-0a451c0299d7",
        "href": f"{LOCAL}/restorePoints/f22db071-39ba-4ca5-a492-0a451c0299d7?format=Entity",
        "name": "Jun  5 2025  1:01AM",  # never parsed
        "backup_uid": "urn:veeam:Backup:d9470b6c-d64e-477b-a813-ae9dde7791f5",
        "backup_server_uid": SERVER,
        "backup_date_utc": at(2025, 6, 5, 1, 1, 27, 110000),
        "placeholder": False,
    }
    assert point.parents == {
        "backup_uid": Link(
            "Up", "BackupReference", f"{LOCAL}/backups/d9470b6c-d64e-477b-a813-ae9dde7791f5", "Backup Job 5"
        ),
        "backup_server_uid": SERVER_LINK,
    }


def test_agent_child_backup_names_its_parent_backup():
    backup = read("backup-child.xml", registry.BACKUP)
    assert backup.row == {
        "uid": "urn:veeam:Backup:082503a1-5887-4f1a-b785-b83faf066e71",
        "href": f"{LOCAL}/backups/082503a1-5887-4f1a-b785-b83faf066e71?format=Entity",
        "name": "Agent Backup Job 1 - agent05.example.test",
        "repository_uid": "urn:veeam:Repository:425b6739-5082-4f7a-99fb-1ae13ef87d9f",
        "backup_server_uid": SERVER,
        "parent_backup_uid": "urn:veeam:Backup:ddf0a147-45ea-4295-813e-4fc919e6864a",
        "platform": "AgentForWindows",
        "backup_type": "ChildBackup",
        "placeholder": False,
    }  # no job: EM's Backup names none (job_uid is the loader's, em-backup-side.md §5)
    assert backup.parents == {
        "repository_uid": Link(
            "Up",
            "RepositoryReference",
            f"{LOCAL}/repositories/425b6739-5082-4f7a-99fb-1ae13ef87d9f",
            "Default Backup Repository",
        ),
        "backup_server_uid": SERVER_LINK,
        # the second Up link of backup kind, typed like the entity it names (em-backup-side.md §5)
        "parent_backup_uid": Link(
            "Up",
            "Backup",
            f"{LOCAL}/backups/ddf0a147-45ea-4295-813e-4fc919e6864a?format=Entity",
            "Parent Backup",
        ),
    }


def test_backup_file_with_its_sizes_and_ratios():
    file = read("backup-file.xml", registry.BACKUP_FILE)
    assert file.row == {
        "uid": "urn:veeam:BackupFile:77c68f2e-fd26-4eba-9d69-74103cbb3911",
        "href": f"{LOCAL}/backupFiles/77c68f2e-fd26-4eba-9d69-74103cbb3911?format=Entity",
        "name": "Backup Job 1D2025-05-29T060108_8D1C.vbk",  # its date is the server's local time
        "backup_uid": "urn:veeam:Backup:39cb6675-8930-436a-8ac3-8a4ae6195cb1",
        "backup_server_uid": SERVER,
        "file_path": "C:\\Backup\\Backup Job 1\\Backup Job 1D2025-05-29T060108_8D1C.vbk",
        "file_type": "vbk",
        "backup_size": 8682549248,
        "data_size": 75161991659,
        "deduplication_ratio": 5.71,
        "compress_ratio": 1.52,
        "creation_time_utc": at(2025, 5, 29, 4, 0, 20, 320000),  # from CreationTimeUtc (spelled so)
        "placeholder": False,
    }
    assert file.parents == {
        "backup_uid": Link(
            "Up", "BackupReference", f"{LOCAL}/backups/39cb6675-8930-436a-8ac3-8a4ae6195cb1", "Backup Job 1"
        ),
        "backup_server_uid": SERVER_LINK,
    }


def test_repository():
    repository = read("repository.xml", registry.REPOSITORY)
    assert repository.row == {
        "uid": "urn:veeam:Repository:425b6739-5082-4f7a-99fb-1ae13ef87d9f",
        "href": f"{LOCAL}/repositories/425b6739-5082-4f7a-99fb-1ae13ef87d9f?format=Entity",
        "name": "Default Backup Repository",
        "backup_server_uid": SERVER,
        "kind": "WindowsLocal",
        "capacity": 106779635712,
        "free_space": 9223929856,
        "placeholder": False,
    }
    assert repository.parents == {"backup_server_uid": SERVER_LINK}


def test_replica():
    replica = read("replica.xml", registry.REPLICA)
    assert replica.row == {
        "uid": "urn:veeam:Replica:fe4d9334-8801-440c-9994-5a16181d7fb0",
        "href": f"{LOCAL}/replicas/fe4d9334-8801-440c-9994-5a16181d7fb0?format=Entity",
        "name": "SQL Replication",
        "repository_uid": "urn:veeam:Repository:cbd9a4b6-b9ed-4cd6-a091-75b6481c9d55",
        "backup_server_uid": "urn:veeam:BackupServer:ce15a8c7-aa49-495e-b05b-ee3398c91018",
        "platform": "VMware",
        "placeholder": False,
    }  # no job: EM's Replica names none (em-backup-side.md §9)
    assert replica.parents == {
        "repository_uid": Link(
            "Up",
            "RepositoryReference",
            f"{LOCAL}/repositories/cbd9a4b6-b9ed-4cd6-a091-75b6481c9d55",
            "Default Backup Repository",
        ),
        "backup_server_uid": Link(
            "Up",
            "BackupServerReference",
            f"{LOCAL}/backupServers/ce15a8c7-aa49-495e-b05b-ee3398c91018",
            "vbr02.example.test",
        ),
    }
