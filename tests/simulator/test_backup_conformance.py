"""The simulator's backup-side bodies have the shape of Veeam's reference examples.

For each body in tests/payloads/backup/ (the examples of em-backup-side.md, see its README) the
simulator serves an object in the same situation; both must have the same root element, the same
attribute set, the same child elements in the same order, and the same links (Rel, Type and which
attributes each link carries) in the same order. Where they differ, the simulator is wrong.
ElementTree only.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from etl.simulator import Simulator, World

NS = "{http://www.veeam.com/ent/v1.0}"
PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "backup"
NEWEST = "vbr01.lab.local"  # server 0 runs the newest version in every estate


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def shape(el: ET.Element) -> dict:
    out = {
        "tag": local(el.tag),
        "attributes": sorted(el.attrib),
        "children": [local(c.tag) for c in el],
        "links": [(x.get("Rel"), x.get("Type"), sorted(x.attrib)) for x in el.find(NS + "Links")],
    }
    for name in ("JobScheduleOptions", "JobInfo"):  # version-shaped wrappers: the first level only
        child = el.find(NS + name)
        if child is not None:
            out[name] = local(child[0].tag)
    return out


def first_entity(root: ET.Element) -> ET.Element:
    if local(root.tag) == "QueryResult":
        return root.find(NS + "Entities")[0][0]
    if local(root.tag) == "EntityReferences":
        return root[0]
    return root


class Api:
    def __init__(self, sim: Simulator):
        self.sim = sim
        self.c = httpx.Client(timeout=30)
        r = self.c.post(sim.url + "/sessionMngr/?v=latest", auth=(sim.user, sim.password))
        self.h = {"X-RestSvcSessionId": r.headers["X-RestSvcSessionId"]}

    def xml(self, url: str) -> ET.Element:
        if not url.startswith("http"):
            url = self.sim.url + url
        r = self.c.get(url, headers=self.h)
        assert r.status_code == 200, (url, r.text[:300])
        return ET.fromstring(r.content)  # noqa: S314 - our own simulator's output

    def query(self, type_: str, flt: str | None = None) -> ET.Element:
        q = f"/query?type={type_}&format=Entities&pageSize=5" + (
            f"&filter={quote(flt, safe='')}" if flt else ""
        )
        return self.xml(q)

    def one(self, type_: str, flt: str | None = None) -> ET.Element:
        root = self.query(type_, flt)
        entities = [el for wrapper in root.find(NS + "Entities") for el in wrapper]
        assert entities, (type_, flt)
        return self.xml(entities[0].get("Href"))  # the single-entity GET, as the examples show it


@pytest.fixture(scope="module")
def api():
    with Simulator(World()) as sim:
        yield Api(sim)


def _backup_job_uid(api: Api) -> str:
    return api.one("Job", f'JobType==Backup;BackupServerName=="{NEWEST}"').get("UID")


CASES = {
    "job.xml": lambda api: api.one("Job", "JobType==Backup;ScheduleEnabled==true"),
    "job-immediate-copy.xml": lambda api: api.one("Job", "JobType==ImmediateBackupCopy"),
    "agent-backup-job.xml": lambda api: api.one("AgentBackupJob"),
    "backup-job-session.xml": lambda api: api.one(
        "BackupJobSession", "JobType==ImmediateBackupCopyWorker;State==Stopped;Result==Failed"
    ),
    "agent-management-session-ref.xml": lambda api: api.xml(
        api.one("BackupJobSession", "JobType==AgentBackup;State==Stopped").get("Href").split("?")[0]
        + "/agentManagementSessions"
    )[0],
    "backup-task-session.xml": lambda api: api.one(
        "BackupTaskSession", f'Result==Failed;BackupServerName=="{NEWEST}";JobUid=="{_backup_job_uid(api)}"'
    ),
    "backup-task-session-success.xml": lambda api: api.one(
        "BackupTaskSession", f'Result==Success;BackupServerName=="{NEWEST}";JobUid=="{_backup_job_uid(api)}"'
    ),
    "vm-restore-point.xml": lambda api: api.one("VmRestorePoint", f'BackupServerName=="{NEWEST}"'),
    "restore-point.xml": lambda api: api.one("RestorePoint", f'BackupServerName=="{NEWEST}"'),
    "backup-child.xml": lambda api: api.one("Backup", "BackupType==ChildBackup"),
    "backup-file.xml": lambda api: api.one("BackupFile", f'BackupServerName=="{NEWEST}"'),
    "repository.xml": lambda api: api.one("Repository", 'Name=="Default Backup Repository"'),
    "replica.xml": lambda api: api.one("Replica"),
}


def test_every_payload_has_a_case():
    assert sorted(p.name for p in PAYLOADS.glob("*.xml")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_simulator_body_has_the_reference_shape(api, name):
    reference = first_entity(ET.parse(PAYLOADS / name).getroot())  # noqa: S314 - recorded test data
    served = CASES[name](api)
    assert shape(served) == shape(reference)


def test_query_wrappers_match_the_reference():
    """The query page of the session example: `QueryResult/Entities/BackupJobSessions`, then PagingInfo."""
    reference = ET.parse(PAYLOADS / "backup-job-session.xml").getroot()  # noqa: S314 - test data
    with Simulator(World(days=2)) as sim:
        root = Api(sim).query("BackupJobSession")
    for tree in (reference, root):
        assert [local(c.tag) for c in tree] == ["Entities", "PagingInfo"]
    assert [local(c.tag) for c in root.find(NS + "Entities")] == ["BackupJobSessions"]
    assert [local(c.tag) for c in reference.find(NS + "Entities")] == ["BackupJobSessions"]
    ref_rels = {x.get("Rel") for x in reference.find(NS + "PagingInfo").iter(NS + "Link")}
    assert ref_rels <= {x.get("Rel") for x in root.find(NS + "PagingInfo").iter(NS + "Link")}
