"""etl.transform: one element in, one row of the contract's columns out."""

from datetime import UTC, datetime

import pytest

from etl import parse, registry, transform
from etl.errors import DataError

NS = 'xmlns="http://www.veeam.com/ent/v1.0"'


def el(xml: str):
    return parse.document(xml.encode(), "http://em/api/x")


def test_seed_task_session(payload):
    e = transform.entity(
        registry.REPLICA_TASK_SESSION, parse.document(payload("seed_task_session_entity.xml"), "u")
    )
    assert e.table == "replica_task_sessions"
    assert e.row == {
        "uid": "urn:veeam:ReplicaTaskSession:24590151-20cd-4e57-8a2f-8b65869a1879",
        "href": "http://localhost:9399/api/repicaTaskSessions/24590151-20cd-4e57-8a2f-8b65869a1879?format=Entity",
        "name": "srv04@2014-10-19 06:47:21",
        "vm_display_name": "srv04",
        "job_session_uid": "urn:veeam:ReplicaJobSession:0bcf5a1e-866c-4b40-8bc3-ce64753b9a6b",
        "backup_server_uid": "urn:veeam:BackupServer:ce15a8c7-aa49-495e-b05b-ee3398c91018",
        "replica_point_uid": "urn:veeam:VmReplicaPoint:623cbbec-c8ff-4cf4-96be-d433f3b775c7",
        "creation_time_utc": datetime(2014, 10, 19, 6, 47, 21, tzinfo=UTC),
        "end_time_utc": datetime(2014, 10, 19, 7, 2, 33, tzinfo=UTC),
        "state": "Completed",
        "result": "Success",
        "reason": None,
        "total_size": 64424509440,
    }
    assert set(e.parents) == {"job_session_uid", "backup_server_uid", "replica_point_uid"}
    assert e.parents["backup_server_uid"].name == "srv02.veeam.local"


def test_running_task_session_has_nulls():
    e = transform.entity(
        registry.REPLICA_TASK_SESSION,
        el(
            f'<ReplicaTaskSession {NS} UID="urn:veeam:ReplicaTaskSession:1" Href="/api/replicaTaskSessions/1" Name="vm@x"'
            f' VmDisplayName="vm"><Links><Link Rel="Up" Type="ReplicaJobSessionReference" Href="/api/replicaSessions/9"/>'
            f"</Links><CreationTimeUTC>2025-08-15T06:00:00.1234567Z</CreationTimeUTC><State>InProgress</State>"
            f"<Result>None</Result><Reason/><TotalSize>0</TotalSize><Unknown>ignored</Unknown></ReplicaTaskSession>"
        ),
    )
    row = e.row
    assert row["end_time_utc"] is None and row["result"] == "None" and row["replica_point_uid"] is None
    assert (
        row["job_session_uid"] == "urn:veeam:ReplicaJobSession:9"
    )  # from the Up link when the element is absent
    assert row["backup_server_uid"] is None
    assert row["creation_time_utc"] == datetime(2025, 8, 15, 6, 0, 0, 123456, tzinfo=UTC)


def test_job_session():
    e = transform.entity(
        registry.REPLICA_JOB_SESSION,
        el(
            f'<ReplicaJobSession {NS} Href="/api/replicaSessions/2c?format=Entity" Type="ReplicaJobSession" '
            f'Name="Fileserver02 Replication@2014-10-19 06:46:31" UID="urn:veeam:ReplicaJobSession:2c"><Links>'
            f'<Link Rel="Up" Type="BackupServerReference" Href="/api/backupServers/ce15" Name="srv02"/>'
            f'<Link Rel="Up" Type="JobReference" Href="/api/jobs/77" Name="Fileserver02 Replication"/></Links>'
            f"<JobUid>urn:veeam:Job:77</JobUid><JobName>Fileserver02 Replication</JobName><JobType>Replica</JobType>"
            f"<CreationTimeUTC>2014-10-19T06:46:31Z</CreationTimeUTC><EndTimeUTC>2014-10-19T07:10:00Z</EndTimeUTC>"
            f"<State>Stopped</State><Result>Failed</Result><Progress>100</Progress>"
            f"<FailureMessage>Host unreachable</FailureMessage><IsRetry>true</IsRetry></ReplicaJobSession>"
        ),
    )
    assert e.row["backup_server_uid"] == "urn:veeam:BackupServer:ce15"
    assert (
        e.row["is_retry"] is True
        and e.row["progress"] == 100
        and e.row["failure_message"] == "Host unreachable"
    )
    assert e.row["placeholder"] is False


def test_backup_server_and_point():
    s = transform.entity(
        registry.BACKUP_SERVER,
        el(
            f'<BackupServer {NS} Type="BackupServer" Href="/api/backupServers/ce15?format=Entity" Name="srv02" '
            f'UID="urn:veeam:BackupServer:ce15"><Description></Description><Port>9392</Port>'
            f"<Version>12.1.2.172</Version></BackupServer>"
        ),
    ).row
    assert s["description"] is None and s["port"] == 9392 and s["wcf_port"] is None
    p = transform.entity(
        registry.VM_REPLICA_POINT,
        el(
            f'<VmReplicaPoint {NS} UID="urn:veeam:VmReplicaPoint:62" Name="srv04@2014-10-19 06:48:24" '
            f'VmDisplayName="srv04"><Links><Link Rel="Up" Type="ReplicaReference" Href="/api/replicas/aa" Name="srv04"/>'
            f"</Links><CreationTimeUTC>2014-10-19T06:48:24Z</CreationTimeUTC><Algorithm>Incremental</Algorithm>"
            f"<PointType>Increment</PointType></VmReplicaPoint>"
        ),
    ).row
    assert (
        p["replica_uid"] == "urn:veeam:Replica:aa" and p["vm_name"] is None and p["backup_server_uid"] is None
    )


@pytest.mark.parametrize(
    "field,value",
    [
        ("TotalSize", "lots"),
        ("CreationTimeUTC", "2025-13-01T00:00:00Z"),
        ("Progress", "half"),
        ("IsRetry", "maybe"),
    ],
)
def test_bad_fields_raise_data_error(field, value):
    fields = {
        "CreationTimeUTC": "2025-01-01T00:00:00Z",
        "TotalSize": "1",
        "Progress": "5",
        "IsRetry": "false",
    }
    fields[field] = value
    body = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    task = f'<ReplicaTaskSession {NS} UID="urn:veeam:ReplicaTaskSession:1"><JobSessionUid>urn:veeam:ReplicaJobSession:1</JobSessionUid>'
    job = f'<ReplicaJobSession {NS} UID="urn:veeam:ReplicaJobSession:1">'
    with pytest.raises(DataError):
        transform.entity(registry.REPLICA_TASK_SESSION, el(task + body + "</ReplicaTaskSession>"))
        transform.entity(registry.REPLICA_JOB_SESSION, el(job + body + "</ReplicaJobSession>"))


def test_enum_values_are_stored_as_sent_whatever_they_are():
    """Enums are open sets (em-api.md): an undocumented State or Result is a value, not an error."""
    body = (
        f'<ReplicaJobSession {NS} UID="urn:veeam:ReplicaJobSession:1"><JobUid>urn:veeam:Job:1</JobUid>'
        f"<JobType>ImmediateBackupCopyWorker</JobType><CreationTimeUTC>2025-06-17T20:00:05.437Z</CreationTimeUTC>"
        f"<State>WaitingRepository</State><Result>Exploded</Result><Progress>0</Progress><IsRetry>false</IsRetry>"
        f"</ReplicaJobSession>"
    )
    row = transform.entity(registry.REPLICA_JOB_SESSION, el(body)).row
    assert (row["state"], row["result"], row["job_type"]) == (
        "WaitingRepository",
        "Exploded",
        "ImmediateBackupCopyWorker",
    )
    assert row["end_time_utc"] is None


def test_missing_uid_is_data_error():
    with pytest.raises(DataError, match="UID"):
        transform.entity(registry.BACKUP_SERVER, el(f"<BackupServer {NS}/>"))


def test_placeholder_from_link():
    link = parse.Link("Up", "BackupServerReference", "http://em:9399/api/backupServers/ce15", "srv02")
    assert transform.placeholder(link, "urn:veeam:BackupServer:ce15") == {
        "uid": "urn:veeam:BackupServer:ce15",
        "href": link.href,
        "name": "srv02",
        "placeholder": True,
    }


def test_rows_are_flat_tuples_with_the_first_link_per_parent():
    def link(n):
        return parse.Link("Up", "ReplicaJobSessionReference", f"/api/replicaSessions/{n}", f"job {n}")

    entities = [
        transform.Entity(
            "replica_task_sessions",
            {"uid": f"t{i}", "job_session_uid": job},
            {"job_session_uid": link(f"{job}-{i}")},
        )
        for i, job in enumerate(["j1", "j1", "j2"])
    ]
    rows = transform.rows_of("replica_task_sessions", entities)
    assert rows.columns == ("uid", "job_session_uid")
    assert rows.values == [("t0", "j1"), ("t1", "j1"), ("t2", "j2")]
    assert rows.column("job_session_uid") == ["j1", "j1", "j2"] and rows.column("absent") == [None] * 3
    # keyed by the row's own parent uid; the first link met for it is the one kept
    assert rows.link("job_session_uid", "j1") == link("j1-0") and rows.link("job_session_uid", "j2") == link(
        "j2-2"
    )
    assert (
        isinstance(rows.link("job_session_uid", "j1"), parse.Link)
        and rows.link("job_session_uid", "j9") is None
    )
    assert transform.table_rows("backup_servers", []) == transform.TableRows("backup_servers", (), [], {})
