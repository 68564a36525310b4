"""Accounts with EM roles in the simulator (em-api.md, "Roles: what an account may read"): a Portal
User is refused jobs (query types and resources) and reads the rest; a VM Restore Operator is also
refused backup servers, backup job sessions and backup task sessions; refusals are EM's 403 body.
Over a real socket, ElementTree only."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from simapi import NS, Api, xml_of

from etl.simulator import Simulator, World

PORTAL_USER_REFUSED = ("Job", "AgentBackupJob", "NasJob", "ObjectInJob")
OPERATOR_REFUSED = (*PORTAL_USER_REFUSED, "BackupServer", "BackupJobSession", "BackupTaskSession")
READABLE = (
    "BackupServer",
    "Repository",
    "Backup",
    "Replica",
    "ReplicaJobSession",
    "ReplicaTaskSession",
    "VmReplicaPoint",
    "BackupJobSession",
    "BackupTaskSession",
    "RestorePoint",
    "VmRestorePoint",
    "BackupFile",
)


@pytest.fixture(scope="module")
def sim():
    with Simulator(World(seed=4, servers=1, jobs=1, backup_jobs=1, vms_per_job=2, days=1)) as s:
        s.add_account("viewer", "view-pw", "PortalUser")
        s.add_account("restorer", "restore-pw", "VM Restore Operator")
        yield s


def query(api: Api, type_name: str) -> httpx.Response:
    return api.get(f"/query?type={type_name}&format=References&pageSize=5&page=1")


def assert_access_denied(r: httpx.Response) -> None:
    assert r.status_code == 403, (r.request.url, r.status_code)
    root = xml_of(r.content)
    assert root.tag == NS + "Error"
    assert (root.get("Message"), root.get("StatusCode")) == ("Access denied", "403")


def first_href(admin: Api, type_name: str) -> str:
    root = admin.xml(f"/query?type={type_name}&format=References&pageSize=1&page=1")
    return root.find(f"{NS}Refs")[0].get("Href")


def test_a_portal_user_is_refused_jobs_and_reads_the_rest(sim):
    admin, viewer = Api(sim), Api(sim, "viewer", "view-pw")
    for type_name in PORTAL_USER_REFUSED:
        assert_access_denied(query(viewer, type_name))
    for type_name in READABLE:
        assert query(viewer, type_name).status_code == 200, type_name
        assert query(admin, type_name).status_code == 200, type_name
    job, agent_job = first_href(admin, "Job"), first_href(admin, "AgentBackupJob")
    assert admin.get(job).status_code == 200 and admin.get(agent_job).status_code == 200
    for url in (job, job + "?format=Entity", job + "/backupSessions", agent_job, "/jobs", "/nas/jobs"):
        assert_access_denied(viewer.get(url))
    for type_name in ("BackupServer", "BackupJobSession", "Backup", "RestorePoint"):
        assert viewer.get(first_href(admin, type_name)).status_code == 200, type_name


def test_a_vm_restore_operator_is_refused_backup_servers_and_backup_sessions(sim):
    admin, restorer = Api(sim), Api(sim, "restorer", "restore-pw")
    for type_name in OPERATOR_REFUSED:
        assert_access_denied(query(restorer, type_name))
    for type_name in set(READABLE) - set(OPERATOR_REFUSED):
        assert query(restorer, type_name).status_code == 200, type_name
    for type_name in ("BackupServer", "BackupJobSession", "BackupTaskSession"):
        assert_access_denied(restorer.get(first_href(admin, type_name)))
    assert_access_denied(restorer.get("/backupSessions"))
    assert restorer.get(first_href(admin, "RestorePoint")).status_code == 200


def test_an_account_given_its_own_refusals(sim):
    sim.add_account("narrow", "narrow-pw", "PortalUser", refused={"Backup", "restorepoint"})
    narrow, admin = Api(sim, "narrow", "narrow-pw"), Api(sim)
    assert_access_denied(query(narrow, "Backup"))
    assert_access_denied(query(narrow, "RESTOREPOINT"))
    assert_access_denied(narrow.get(first_href(admin, "Backup")))
    assert query(narrow, "Job").status_code == 200  # its own set replaces the role's


def test_a_wrong_password_is_401_not_403(sim):
    with httpx.Client(timeout=10) as c:
        r = c.post(sim.url + "/sessionMngr/?v=latest", auth=("viewer", "wrong"))
    assert r.status_code == 401 and "Basic" in r.headers["WWW-Authenticate"]


def test_simulate_adds_accounts_with_roles():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etl",
            "simulate",
            "--port",
            "0",
            "--jobs",
            "1",
            "--days",
            "1",
            "--account",
            "viewer:pw:with:colons:PortalUser",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = line.split(" at ", 1)[1].split()[0]
        assert "viewer (PortalUser)" in line and "pw:with" not in line
        with httpx.Client(timeout=10) as c:
            r = c.post(url + "/sessionMngr/?v=latest", auth=("viewer", "pw:with:colons"))
            assert r.status_code == 201
            token = {"X-RestSvcSessionId": r.headers["X-RestSvcSessionId"]}
            assert_access_denied(c.get(url + "/query?type=Job&pageSize=1&page=1", headers=token))
            assert c.get(url + "/query?type=Backup&pageSize=1&page=1", headers=token).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
