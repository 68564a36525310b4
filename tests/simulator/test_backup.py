"""Tests for the simulator's backup side: determinism, ground truth rebuilt from what the HTTP API
serves, the documented query parameters, the EM quirks of em-backup-side.md, retention and the 404s.

Reads XML with ElementTree only (never etl.parse/etl.client): the simulator and the loader stay
independent readings of the EM format.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest

from etl.simulator import Quirks, Simulator, World

NS = "{http://www.veeam.com/ent/v1.0}"
NOW = datetime(2025, 8, 15, 12, 0, tzinfo=UTC)
BACKUP_TABLES = (
    "jobs",
    "backup_job_sessions",
    "backup_task_sessions",
    "repositories",
    "backups",
    "restore_points",
    "vm_restore_points",
    "agent_restore_points",
    "backup_files",
    "replicas",
)


# ---------------------------------------------------------------------- helpers
class Api:
    def __init__(self, sim: Simulator):
        self.sim = sim
        self.c = httpx.Client(timeout=30)
        r = self.c.post(sim.url + "/sessionMngr/?v=latest", auth=(sim.user, sim.password))
        assert r.status_code == 201, r.text
        self.h = {"X-RestSvcSessionId": r.headers["X-RestSvcSessionId"]}

    def get(self, url: str, **params) -> httpx.Response:
        if not url.startswith("http"):
            url = self.sim.url + url
        return self.c.get(url, params=params or None, headers=self.h)

    def xml(self, url: str, **params) -> ET.Element:
        r = self.get(url, **params)
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
        return ET.fromstring(r.content)  # noqa: S314 - our own simulator's output

    def query(self, type_: str, fmt: str = "Entities", page_size: int = 500, **extra) -> list[ET.Element]:
        """Every entity (or Ref) of a query, following the Next links."""
        params = "".join(f"&{k}={quote(v, safe='')}" for k, v in extra.items())
        url = f"/query?type={type_}&format={fmt}&pageSize={page_size}{params}"
        out = []
        while url:
            root = self.xml(url)
            assert root.tag == NS + "QueryResult"
            if fmt == "Entities":
                wrapper = root.find(NS + "Entities")
                out.extend(el for inner in wrapper for el in inner)
            else:
                out.extend(root.find(NS + "Refs") or [])  # an empty page has no <Refs>
            nxt = [
                x.get("Href")
                for x in root.find(NS + "PagingInfo").iter(NS + "Link")
                if x.get("Rel") == "Next"
            ]
            url = nxt[0] if nxt else None
        return out

    def uids(self, type_: str, flt: str | None = None, **kw) -> set[str]:
        extra = {"filter": flt} if flt else {}
        return {el.get("UID") for el in self.query(type_, "References", 1000, **extra, **kw)}


def text(el: ET.Element, name: str) -> str | None:
    child = el.find(NS + name)
    if child is None or not (child.text or "").strip():
        return None
    return child.text


def has(el: ET.Element, name: str) -> bool:
    return el.find(NS + name) is not None


def links(el: ET.Element) -> list[ET.Element]:
    return list(el.find(NS + "Links"))


def link(el: ET.Element, rel: str, typ: str | None, name: str | None = None) -> ET.Element | None:
    return next(
        (
            x
            for x in links(el)
            if x.get("Rel") == rel and x.get("Type") == typ and (name is None or x.get("Name") == name)
        ),
        None,
    )


def guid_of(href: str) -> str:
    return href.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def up_uid(el: ET.Element, typ: str, urn: str) -> str | None:
    x = link(el, "Up", typ)
    return None if x is None else f"urn:veeam:{urn}:{guid_of(x.get('Href'))}"


def ts(value: str | None) -> datetime | None:
    if value is None:
        return None
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,7}))?Z", value)
    assert m, value
    frac = (m.group(7) or "").ljust(7, "0")[:6]
    return datetime(*map(int, m.groups()[:6]), int(frac), tzinfo=UTC)


def boolean(value: str | None) -> bool | None:
    return None if value is None else value == "true"


def placeholder(uid: str, href: str, name: str, columns: tuple[str, ...]) -> dict:
    return {"uid": uid, "href": href, "name": name, "placeholder": True, **dict.fromkeys(columns)}


JOB_COLS = (
    "backup_server_uid",
    "job_type",
    "platform",
    "description",
    "schedule_configured",
    "schedule_enabled",
    "next_run_utc",
)
VRP_COLS = (
    "restore_point_uid",
    "backup_file_uid",
    "backup_server_uid",
    "vm_display_name",
    "vm_name",
    "hierarchy_obj_ref",
    "creation_time_utc",
    "algorithm",
    "point_type",
)


def crawl(api: Api) -> dict[str, dict[str, dict]]:
    """The backup-side warehouse rows, rebuilt from the query service and links alone."""
    out: dict[str, dict[str, dict]] = {t: {} for t in BACKUP_TABLES}
    jobs = out["jobs"]
    for type_ in ("Job", "AgentBackupJob", "NasJob"):
        for el in api.query(type_):
            uid = "urn:veeam:Job:" + guid_of(el.get("Href"))
            assert el.get("UID").rsplit(":", 1)[-1] == uid.rsplit(":", 1)[-1]
            jobs[uid] = {
                "uid": uid,
                "href": el.get("Href"),
                "backup_server_uid": up_uid(el, "BackupServerReference", "BackupServer"),
                "name": el.get("Name"),
                "job_type": text(el, "JobType"),
                "platform": text(el, "Platform"),
                "description": text(el, "Description"),
                "schedule_configured": boolean(text(el, "ScheduleConfigured")),
                "schedule_enabled": boolean(text(el, "ScheduleEnabled")),
                "next_run_utc": ts(text(el, "NextRun")),
                "placeholder": False,
            }
    for el in api.query("BackupJobSession"):
        job = link(el, "Up", "JobReference")
        job_uid = text(el, "JobUid")
        if job_uid not in jobs:
            assert api.get(job.get("Href")).status_code == 404
            assert api.get(job.get("Href"), format="Entity").status_code == 404
            jobs[job_uid] = placeholder(job_uid, job.get("Href"), job.get("Name"), JOB_COLS)
        parent = link(el, "Up", "BackupJobSessionReference", "Parent session")
        out["backup_job_sessions"][el.get("UID")] = {
            "uid": el.get("UID"),
            "href": el.get("Href"),
            "backup_server_uid": up_uid(el, "BackupServerReference", "BackupServer"),
            "job_uid": job_uid,
            "parent_session_uid": None
            if parent is None
            else "urn:veeam:BackupJobSession:" + guid_of(parent.get("Href")),
            "job_name": text(el, "JobName"),
            "job_type": text(el, "JobType"),
            "name": el.get("Name"),
            "creation_time_utc": ts(text(el, "CreationTimeUTC")),
            "end_time_utc": ts(text(el, "EndTimeUTC")),
            "state": text(el, "State"),
            "result": text(el, "Result"),
            "progress": int(text(el, "Progress")),
            "is_retry": boolean(text(el, "IsRetry")),
            "failure_message": text(el, "FailureMessage"),
            "placeholder": False,
        }
    for el in api.query("Repository"):
        cap = int(text(el, "Capacity"))
        out["repositories"][el.get("UID")] = {
            "uid": el.get("UID"),
            "href": el.get("Href"),
            "backup_server_uid": up_uid(el, "BackupServerReference", "BackupServer"),
            "name": el.get("Name"),
            "kind": text(el, "Kind"),
            "capacity": None if cap == -1 else cap,
            "free_space": None if text(el, "FreeSpace") == "-1" else int(text(el, "FreeSpace")),
            "placeholder": False,
        }
    backup_job: dict[str, str] = {}
    replica_job: dict[str, str] = {}
    for uid, row in jobs.items():
        if not row["placeholder"]:
            for u in api.uids("Backup", f'JobUid=="{uid}"'):
                assert u not in backup_job, "two jobs answer JobUid== for one backup"
                backup_job[u] = uid
            for u in api.uids("Replica", f'JobUid=="{uid}"'):
                replica_job[u] = uid
    for el in api.query("Backup"):
        parent = link(el, "Up", "Backup", "Parent Backup")
        out["backups"][el.get("UID")] = {
            "uid": el.get("UID"),
            "href": el.get("Href"),
            "backup_server_uid": up_uid(el, "BackupServerReference", "BackupServer"),
            "repository_uid": up_uid(el, "RepositoryReference", "Repository"),
            "parent_backup_uid": None
            if parent is None
            else "urn:veeam:Backup:" + guid_of(parent.get("Href")),
            "job_uid": backup_job.get(el.get("UID")),
            "name": el.get("Name"),
            "platform": text(el, "Platform"),
            "backup_type": text(el, "BackupType"),
            "placeholder": False,
        }
    for el in api.query("RestorePoint"):
        out["restore_points"][el.get("UID")] = {
            "uid": el.get("UID"),
            "href": el.get("Href"),
            "backup_uid": up_uid(el, "BackupReference", "Backup"),
            "backup_server_uid": up_uid(el, "BackupServerReference", "BackupServer"),
            "name": el.get("Name"),
            "backup_date_utc": ts(text(el, "BackupDateUTC")),
            "placeholder": False,
        }
    vrps = out["vm_restore_points"]
    for el in api.query("VmRestorePoint"):
        vrps[el.get("UID")] = {
            "uid": el.get("UID"),
            "href": el.get("Href"),
            "restore_point_uid": up_uid(el, "RestorePointReference", "RestorePoint"),
            "backup_file_uid": up_uid(el, "BackupFileReference", "BackupFile"),
            "backup_server_uid": up_uid(el, "BackupServerReference", "BackupServer"),
            "name": el.get("Name"),
            "vm_display_name": el.get("VmDisplayName"),
            "vm_name": text(el, "VmName"),
            "hierarchy_obj_ref": text(el, "HierarchyObjRef"),
            "creation_time_utc": ts(text(el, "CreationTimeUTC")),
            "algorithm": text(el, "Algorithm"),
            "point_type": text(el, "PointType"),
            "placeholder": False,
        }
    for el in api.query("AgentRestorePoint"):
        out["agent_restore_points"][el.get("UID")] = {
            "uid": el.get("UID"),
            "href": el.get("Href"),
            "restore_point_uid": up_uid(el, "RestorePointReference", "RestorePoint"),
            "backup_file_uid": up_uid(el, "BackupFileReference", "BackupFile"),
            "backup_server_uid": up_uid(el, "BackupServerReference", "BackupServer"),
            "name": el.get("Name"),
            "computer_name": el.get("Name").rsplit("@", 1)[0],
            "creation_time_utc": ts(text(el, "CreationTimeUTC")),
            "algorithm": text(el, "Algorithm"),
            "point_type": text(el, "PointType"),
            "placeholder": False,
        }
    listed = dict(vrps)
    for el in api.query("BackupTaskSession"):
        rel = link(el, "Related", "VmRestorePoint")
        row = {
            "uid": el.get("UID"),
            "href": el.get("Href"),
            "job_session_uid": text(el, "JobSessionUid"),
            "backup_server_uid": up_uid(el, "BackupServerReference", "BackupServer"),
            "vm_restore_point_uid": None,
            "vm_restore_point_link": None,
            "name": el.get("Name"),
            "vm_display_name": el.get("VmDisplayName"),
            "vm_uid": text(el, "VmUid"),
            "creation_time_utc": ts(text(el, "CreationTimeUTC")),
            "end_time_utc": ts(text(el, "EndTimeUTC")),
            "state": text(el, "State"),
            "result": text(el, "Result"),
            "reason": text(el, "Reason"),
            "total_size": int(text(el, "TotalSize")),
        }
        if rel is not None:
            uid = "urn:veeam:VmRestorePoint:" + guid_of(rel.get("Href"))
            row["vm_restore_point_uid"], row["vm_restore_point_link"] = uid, "link"
            if uid not in vrps:
                assert api.get(rel.get("Href")).status_code == 404
                vrps[uid] = placeholder(uid, rel.get("Href"), rel.get("Name"), VRP_COLS)
        elif row["result"] in ("Success", "Warning"):
            hits = [v["uid"] for v in listed.values() if _inferred(row, v)]
            assert len(hits) <= 1, f"ambiguous inference for {row['uid']}: {hits}"
            if hits:
                row["vm_restore_point_uid"], row["vm_restore_point_link"] = hits[0], "inferred"
        out["backup_task_sessions"][row["uid"]] = row
    for el in api.query("BackupFile"):
        out["backup_files"][el.get("UID")] = {
            "uid": el.get("UID"),
            "href": el.get("Href"),
            "backup_uid": up_uid(el, "BackupReference", "Backup"),
            "backup_server_uid": up_uid(el, "BackupServerReference", "BackupServer"),
            "name": el.get("Name"),
            "file_path": text(el, "FilePath"),
            "file_type": text(el, "FileType"),
            "backup_size": int(text(el, "BackupSize")),
            "data_size": int(text(el, "DataSize")),
            "deduplication_ratio": float(text(el, "DeduplicationRatio")),
            "compress_ratio": float(text(el, "CompressRatio")),
            "creation_time_utc": ts(text(el, "CreationTimeUtc")),
            "placeholder": False,
        }
    for el in api.query("Replica"):
        out["replicas"][el.get("UID")] = {
            "uid": el.get("UID"),
            "href": el.get("Href"),
            "backup_server_uid": up_uid(el, "BackupServerReference", "BackupServer"),
            "repository_uid": up_uid(el, "RepositoryReference", "Repository"),
            "job_uid": replica_job.get(el.get("UID")),
            "name": el.get("Name"),
            "platform": text(el, "Platform"),
            "placeholder": False,
        }
    return out


def _inferred(task: dict, v: dict) -> bool:
    """The loader's inference rule: same VM on the same backup server, point inside the task window."""
    if v["backup_server_uid"] != task["backup_server_uid"] or task["end_time_utc"] is None:
        return False
    if task["vm_uid"] is not None:
        same = v["hierarchy_obj_ref"] == task["vm_uid"]
    else:
        same = (v["vm_name"] or v["name"].rsplit("@", 1)[0]) == task["vm_display_name"]
    return same and task["creation_time_utc"] <= v["creation_time_utc"] <= task["end_time_utc"]


def assert_tables_equal(got: dict, want: dict, tables=BACKUP_TABLES) -> None:
    for table in tables:
        assert set(got[table]) == set(want[table]), (
            table,
            sorted(set(got[table]) ^ set(want[table]))[:3],
        )
        for uid, row in want[table].items():
            assert got[table][uid] == row, (
                table,
                uid,
                {k: (got[table][uid].get(k), v) for k, v in row.items() if got[table][uid].get(k) != v},
            )


@pytest.fixture(scope="module")
def world() -> World:
    return World()


@pytest.fixture(scope="module")
def sim(world):
    with Simulator(world) as s:
        yield s


@pytest.fixture(scope="module")
def api(sim) -> Api:
    return Api(sim)


@pytest.fixture(scope="module")
def truth(sim) -> dict:
    return sim.truth()


# ---------------------------------------------------------------------- the model
def test_determinism_and_stepping():
    a, b, c = World(seed=7, days=5).truth(), World(seed=7, days=5).truth(), World(seed=8, days=5).truth()
    assert a == b
    assert a["backup_task_sessions"].keys() != c["backup_task_sessions"].keys()
    one, stepped = World(seed=7, days=5), World(seed=7, days=5)
    one.advance(timedelta(hours=30))
    for _ in range(10):
        stepped.advance(timedelta(hours=3))
    assert one.truth() == stepped.truth()


def test_replication_side_unchanged_by_backup_parameters():
    plain = World(seed=4, days=3, backup_jobs=0, agent_jobs=0, copy_jobs=0, nas_jobs=0).truth()
    full = World(seed=4, days=3, backup_jobs=9, agent_jobs=3, copy_jobs=3, nas_jobs=2).truth()
    for table in ("backup_servers", "replica_job_sessions", "replica_task_sessions", "vm_replica_points"):
        assert plain[table] == full[table]
    assert not plain["backup_job_sessions"] and full["backup_job_sessions"]


def test_truth_is_consistent(truth):
    sessions, tasks = truth["backup_job_sessions"], truth["backup_task_sessions"]
    jobs = truth["jobs"]
    assert all(r["job_uid"] in jobs for r in sessions.values())
    assert all(r["job_uid"] in jobs for r in truth["replica_job_sessions"].values())
    assert all(r["replica_uid"] in truth["replicas"] for r in truth["vm_replica_points"].values())
    assert all(r["job_session_uid"] in sessions for r in tasks.values())
    for r in tasks.values():
        assert (r["vm_restore_point_uid"] is None) == (r["vm_restore_point_link"] is None)
        if r["vm_restore_point_uid"] is not None:
            assert r["result"] in ("Success", "Warning") and r["state"] == "Completed"
            vrp = truth["vm_restore_points"][r["vm_restore_point_uid"]]
            assert r["creation_time_utc"] <= vrp["creation_time_utc"] <= r["end_time_utc"]
            if r["vm_uid"] is not None:
                assert vrp["hierarchy_obj_ref"] == r["vm_uid"]
    backup_tasks = [
        r for r in tasks.values() if jobs[sessions[r["job_session_uid"]]["job_uid"]]["job_type"] == "Backup"
    ]
    done = [r for r in backup_tasks if r["result"] in ("Success", "Warning") and r["state"] == "Completed"]
    assert done and all(r["vm_restore_point_uid"] for r in done)
    # a task in progress already reads Success on newer servers (em-samples/query-task-inprogress-...)
    assert any(r["state"] == "InProgress" and r["result"] == "Success" for r in backup_tasks)
    for r in truth["vm_restore_points"].values():
        assert r["restore_point_uid"] in truth["restore_points"]
        assert r["backup_file_uid"] is None or r["backup_file_uid"] in truth["backup_files"]
    for r in truth["restore_points"].values():
        assert r["backup_uid"] in truth["backups"]
    for r in truth["backups"].values():
        assert r["repository_uid"] in truth["repositories"]
        assert r["job_uid"] is None or r["job_uid"] in jobs
        assert (
            r["parent_backup_uid"] is None
            or truth["backups"][r["parent_backup_uid"]]["backup_type"] == "ParentBackup"
        )
    servers = truth["backup_servers"]
    for table in BACKUP_TABLES:
        for r in truth[table].values():
            assert r.get("backup_server_uid") is None or r["backup_server_uid"] in servers


def test_served_estate_equals_truth(api, truth):
    """A crawl of the query service (plus the links it gives) rebuilds every backup-side row."""
    assert_tables_equal(crawl(api), truth)
    for el in api.query("VmReplicaPoint"):
        rep = link(el, "Up", "ReplicaReference")
        assert (
            "urn:veeam:Replica:" + guid_of(rep.get("Href"))
            == truth["vm_replica_points"][el.get("UID")]["replica_uid"]
        )
        assert api.xml(rep.get("Href"), format="Entity").get("Name") == rep.get("Name")


def test_references_format_lists_the_same_uids(api, truth):
    for type_, table in (
        ("BackupJobSession", "backup_job_sessions"),
        ("BackupTaskSession", "backup_task_sessions"),
        ("RestorePoint", "restore_points"),
        ("VmRestorePoint", "vm_restore_points"),
        ("BackupFile", "backup_files"),
        ("Backup", "backups"),
        ("Repository", "repositories"),
        ("Replica", "replicas"),
    ):
        listed = {u for u, r in truth[table].items() if not r.get("placeholder")}
        refs = api.query(type_, "References", 97)
        assert {r.get("UID") for r in refs} == listed and len(refs) == len(listed)
        assert all(r.tag == NS + "Ref" and r.get("Type") == type_ + "Reference" for r in refs)
        assert all(link(r, "Alternate", type_).get("Href").endswith("?format=Entity") for r in refs)


def test_single_entity_and_reference_gets(api, truth):
    for table in BACKUP_TABLES:
        rows = [r for r in truth[table].values() if not r.get("placeholder")]
        for row in rows[:: max(1, len(rows) // 5)]:
            ent = api.xml(row["href"])
            assert ent.get("UID").rsplit(":", 1)[-1] == row["uid"].rsplit(":", 1)[-1]
            assert ent.get("Href") == row["href"] and ent.get("Type") == ent.tag.removeprefix(NS)
            alt = next(x for x in links(ent) if x.get("Rel") == "Alternate")
            ref = api.xml(alt.get("Href"))
            assert (
                ref.tag == NS + "EntityRef"
                and ref.get("Type") == alt.get("Type")
                and ref.get("UID") == ent.get("UID")
            )
            assert next(x for x in links(ref) if x.get("Rel") == "Alternate").get("Href") == row["href"]


# ---------------------------------------------------------------------- quirks in the default estate
def test_jobs(api, truth, world):
    els = api.query("Job")
    types = {text(el, "JobType") for el in els}
    assert {"Backup", "Replica", "ImmediateBackupCopy", "BackupCopy"} <= types
    platforms = {text(el, "Platform") for el in els}
    assert {"HyperV", "Hyperv", "VMware", "CustomPlatform"} <= platforms
    for el in els:
        kids = [c.tag.removeprefix(NS) for c in el]
        assert kids[:6] == [
            "Links",
            "JobType",
            "Platform",
            "Description",
            "ScheduleConfigured",
            "ScheduleEnabled",
        ]
        if "Copy" in text(el, "JobType"):
            assert not has(el, "NextRun") and link(el, "Sync", None) is not None
        assert kids[-2:] == ["JobScheduleOptions", "JobInfo"]
        next_run = ts(text(el, "NextRun"))
        assert next_run is None or next_run > NOW
    assert any(not has(el, "NextRun") and text(el, "JobType") == "Backup" for el in els)  # schedule off
    assert any(has(el, "Description") and text(el, "Description") is None for el in els)  # <Description />
    # replication sessions point at real jobs now
    js = next(iter(world.job_sessions))
    with Simulator(world) as s:
        a = Api(s)
        ref = a.xml(f"/replicaSessions/{js.guid}", format="Entity")
        job = a.xml(link(ref, "Up", "JobReference").get("Href"), format="Entity")
        assert job.get("UID") == text(ref, "JobUid") and text(job, "JobType") == "Replica"
        sessions = a.xml(link(job, "Down", "BackupJobSessionReferenceList").get("Href"))
        assert js.uid in {r.get("UID") for r in sessions}


def test_agent_jobs_and_sessions(api, truth):
    raw = api.get("/query", type="AgentBackupJob", format="Entities").content
    root = ET.fromstring(raw)  # noqa: S314
    wrapper = root.find(NS + "Entities")[0]
    assert wrapper.tag == NS + "AgentBackupJob"  # singular wrapper (spec §10)
    agent_jobs = list(wrapper)
    assert agent_jobs and all(el.tag == NS + "AgentBackupJob" for el in agent_jobs)
    for el in agent_jobs:
        assert el.get("UID").startswith("urn:veeam:AgentBackupJob:")
        assert (
            link(el, "Alternate", "JobReference")
            .get("Href")
            .endswith("/agents/jobs/" + guid_of(el.get("Href")))
        )
        assert text(el, "JobType") == "AgentBackup" and text(el, "Platform").startswith("AgentFor")
    parents = [el for el in api.query("BackupJobSession", filter="JobType==AgentBackup")]
    children = [el for el in api.query("BackupJobSession", filter="JobType==AgentManagement")]
    assert parents and len(children) == 3 * len(parents)
    for p in parents[:5]:
        # one Alternate in a query result (em-samples/query-agent-job-sessions.xml); the entity's own
        # GET adds the list of its per-computer sessions (em-backup-side.md §10)
        assert [x.get("Type") for x in links(p) if x.get("Rel") == "Alternate"] == [
            "BackupJobSessionReference"
        ]
        alts = [x for x in links(api.xml(p.get("Href"))) if x.get("Rel") == "Alternate"]
        assert [x.get("Type") for x in alts] == ["BackupJobSessionReference", "BackupJobSessionReferenceList"]
        kids = api.xml(alts[1].get("Href"))
        assert kids.tag == NS + "EntityReferences" and len(kids) == 3
        for ref in kids:
            assert (
                link(ref, "Up", "BackupJobSessionReference", "Parent session")
                .get("Href")
                .endswith(guid_of(p.get("Href")))
            )
            assert link(ref, "Alternate", "BackupJobSession").get("Href").endswith("?format=Entity")
        job = link(p, "Up", "JobReference")
        assert "/agents/jobs/" in job.get("Href")
        assert api.xml(job.get("Href"), format="Entity").get("UID") == "urn:veeam:AgentBackupJob:" + guid_of(
            job.get("Href")
        )
        assert text(p, "JobUid") == "urn:veeam:Job:" + guid_of(job.get("Href"))
    for c in children[:5]:
        job = link(c, "Up", "JobReference")
        assert "/agents/jobs/" in job.get("Href") and " - " in job.get("Name")
        assert api.get(job.get("Href")).status_code == 404
        assert text(c, "JobName") == job.get("Name")
        row = truth["jobs"][text(c, "JobUid")]
        assert row["placeholder"] and row["href"] == job.get("Href") and row["name"] == job.get("Name")
        tasks = api.xml(link(c, "Down", "BackupTaskSessionReferenceList").get("Href"))
        assert len(tasks) == 1
    assert all(
        r["parent_session_uid"]
        for r in truth["backup_job_sessions"].values()
        if r["job_type"] == "AgentManagement"
    )
    assert all(
        r["parent_session_uid"] is None
        for r in truth["backup_job_sessions"].values()
        if r["job_type"] != "AgentManagement"
    )


def test_backup_sessions(api, truth):
    sessions = truth["backup_job_sessions"]
    retries = [r for r in sessions.values() if r["is_retry"] and r["job_type"] == "Backup"]
    assert retries
    tasks_by = {}
    for t in truth["backup_task_sessions"].values():
        tasks_by.setdefault(t["job_session_uid"], []).append(t)
    for r in retries:
        earlier = [
            s for s in sessions.values()
            if s["job_uid"] == r["job_uid"] and not s["is_retry"] and s["creation_time_utc"] < r["creation_time_utc"]
        ]  # fmt: skip
        original = max(earlier, key=lambda s: s["creation_time_utc"])
        failed = sorted(t["vm_display_name"] for t in tasks_by[original["uid"]] if t["result"] == "Failed")
        assert sorted(t["vm_display_name"] for t in tasks_by[r["uid"]]) == failed
    running = [r for r in sessions.values() if r["end_time_utc"] is None]
    assert {r["job_type"] for r in running} >= {"Backup", "ImmediateBackupCopyWorker"}
    assert {r["state"] for r in running} >= {"Working", "Idle"}
    assert all(r["result"] == "None" and r["failure_message"] is None for r in running)
    workers = [r for r in sessions.values() if r["job_type"] == "ImmediateBackupCopyWorker"]
    assert workers and all("\\" in r["job_name"] for r in workers)
    open_workers = [r for r in workers if r["end_time_utc"] is None]
    assert open_workers and all(NOW - r["creation_time_utc"] > timedelta(days=1) for r in open_workers)
    for r in workers[:3]:
        job = truth["jobs"][r["job_uid"]]
        assert job["placeholder"] and api.get(job["href"]).status_code == 404
        assert r["job_uid"] not in {el.get("UID") for el in api.query("Job", "References")}
    assert any(r["failure_message"] for r in sessions.values() if r["result"] == "Failed")
    assert any(r["is_retry"] for r in workers)
    legacy = [r for r in sessions.values() if r["job_type"] == "BackupCopy"]
    assert legacy and all(not truth["jobs"][r["job_uid"]]["placeholder"] for r in legacy)
    for el in api.query("BackupJobSession", filter="State!=Stopped"):
        assert not has(el, "EndTimeUTC") and text(el, "Result") == "None"


def test_task_sessions_by_server_version(api, truth, world):
    gens = {s.uid: s.version.split(".")[0] for s in world.servers}
    by_server: dict[str, list[ET.Element]] = {}
    for el in api.query("BackupTaskSession"):
        by_server.setdefault(up_uid(el, "BackupServerReference", "BackupServer"), []).append(el)
    assert len(by_server) == 3
    for server, els in by_server.items():
        vm_els = [el for el in els if "." not in el.get("VmDisplayName")]  # not an agent's computer
        related = [el for el in vm_els if link(el, "Related", "VmRestorePoint") is not None]
        with_uid = [el for el in vm_els if has(el, "VmUid")]
        if gens[server] == "12":
            assert related and len(with_uid) == len(vm_els)
            assert all(text(el, "Result") in ("Success", "Warning") for el in related)
            assert all(
                link(el, "Related", "VmRestorePoint").get("Href").endswith("?format=Entity") for el in related
            )
        elif gens[server] == "11":
            assert not related and len(with_uid) == len(vm_els)
        else:
            assert not related and not with_uid
    links_by_kind = {r["vm_restore_point_link"] for r in truth["backup_task_sessions"].values()}
    assert links_by_kind == {"link", "inferred", None}
    failed = [el for els in by_server.values() for el in els if text(el, "Result") == "Failed"]
    assert failed and all(text(el, "TotalSize") == "0" and text(el, "Reason") for el in failed)
    ok = [el for els in by_server.values() for el in els if text(el, "Result") == "Success"]
    assert all(int(text(el, "TotalSize")) > 0 for el in ok)
    raw = api.get(
        "/query", type="BackupTaskSession", format="Entities", pageSize="50", filter="Result==Success"
    ).content
    assert b"<Reason />" in raw


def test_repositories(api, truth, world):
    repos = truth["repositories"]
    defaults = [r for r in repos.values() if r["name"] == "Default Backup Repository"]
    assert len(defaults) == len(world.servers) == len({r["backup_server_uid"] for r in defaults})
    assert [r["capacity"] for r in repos.values()].count(None) == 1
    assert len({r["kind"] for r in repos.values()}) >= 3
    raw = api.get("/query", type="Repository", format="Entities", filter="Capacity==-1").content
    assert raw.count(b"<Capacity>-1</Capacity>") == 1
    w = World(days=2)
    before = {u: r["free_space"] for u, r in w.truth()["repositories"].items()}
    w.advance(timedelta(hours=6))
    after = {u: r["free_space"] for u, r in w.truth()["repositories"].items()}
    assert before.keys() == after.keys() and before != after
    # object storage reports neither capacity nor free space (-1): unknown, NULL
    unknown = {u for u, r in w.truth()["repositories"].items() if r["capacity"] is None}
    assert unknown and all(after[u] is None for u in unknown)
    assert all(v > 0 for u, v in after.items() if u not in unknown)


def test_backups_points_and_files(api, truth, world):
    backups = truth["backups"]
    assert {r["backup_type"] for r in backups.values()} == {"Standard", "ParentBackup", "ChildBackup"}
    children = [r for r in backups.values() if r["backup_type"] == "ChildBackup"]
    for r in children:
        parent = backups[r["parent_backup_uid"]]
        assert r["name"].startswith(parent["name"] + " - ") and r["job_uid"] == parent["job_uid"] is not None
    el = api.xml(children[0]["href"])
    assert [x.get("Name") for x in links(el) if x.get("Rel") == "Up"][-1] == "Parent Backup"
    orphans = [r for r in backups.values() if r["job_uid"] is None]
    assert len(orphans) == 1 and orphans[0]["backup_type"] == "Standard"
    sql = re.compile(r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{4} [ \d]\d:\d\d[AP]M$")
    assert all(sql.match(r["name"]) for r in truth["restore_points"].values())
    assert any("  " in r["name"] for r in truth["restore_points"].values())
    files = truth["backup_files"]
    assert {r["file_type"] for r in files.values()} == {"vbk", "vib", "vrb"}
    for r in files.values():
        reduced = r["data_size"] / (r["deduplication_ratio"] * r["compress_ratio"])
        assert abs(r["backup_size"] - reduced) <= 1 and r["name"].endswith("." + r["file_type"])
    raw = api.get("/query", type="BackupFile", format="Entities", pageSize="20").content
    assert b"<CreationTimeUtc>" in raw and b"<CreationTimeUTC>" not in raw
    assert re.search(rb"<DeduplicationRatio>\d+(\.\d+)?</DeduplicationRatio>", raw)
    # a VM restore point's HierarchyObjRef is its task's VmUid
    tasks = [r for r in truth["backup_task_sessions"].values() if r["vm_uid"] and r["vm_restore_point_uid"]]
    assert tasks and all(
        truth["vm_restore_points"][r["vm_restore_point_uid"]]["hierarchy_obj_ref"] == r["vm_uid"]
        for r in tasks
    )
    vrps = truth["vm_restore_points"].values()
    assert any(r["vm_name"] for r in vrps) and any(r["vm_name"] is None for r in vrps)
    assert any(r["backup_file_uid"] for r in vrps) and any(r["backup_file_uid"] is None for r in vrps)
    assert {r["algorithm"] for r in vrps} == {"Full", "Incremental", "SyntheticFull", "ReversedIncremental"}


def test_older_servers_mistype_list_links(api, world):
    old = {s.uid: s.version.startswith("10.") for s in world.servers}
    seen = set()
    for el in api.query("RestorePoint"):
        is_old = old[up_uid(el, "BackupServerReference", "BackupServer")]
        rel = next(x for x in links(el) if x.get("Rel") == "Related")
        assert rel.get("Href").endswith("/backupFiles")
        assert rel.get("Type") == ("RestorePointReferenceList" if is_old else "BackupFileReferenceList")
        assert (link(el, "Down", "VmRestorePointReferenceList") is not None) == is_old
        seen.add(is_old)
    assert seen == {True, False}
    for n, el in enumerate(api.query("BackupFile")):
        is_old = old[up_uid(el, "BackupServerReference", "BackupServer")]
        rel = next(x for x in links(el) if x.get("Rel") == "Related")
        assert rel.get("Href").endswith("/restorePoints")
        assert rel.get("Type") == ("BackupFileReferenceList" if is_old else "RestorePointReferenceList")
        if n < 3:
            assert [r.get("Type") for r in api.xml(rel.get("Href"))] == ["RestorePointReference"]
    for el in api.query("VmRestorePoint"):
        is_old = old[up_uid(el, "BackupServerReference", "BackupServer")]
        assert (link(el, "Up", "BackupFileReference") is None) == is_old


def test_replicas_one_per_replication_job(api, truth, world):
    reps = truth["replicas"]
    assert len(reps) == len(world.jobs)
    assert {r["name"] for r in reps.values()} == {j.name for j in world.jobs}
    assert all(truth["jobs"][r["job_uid"]]["job_type"] == "Replica" for r in reps.values())
    for uid, r in reps.items():
        assert api.uids("Replica", f'JobUid=="{r["job_uid"]}"') == {uid}
        points = api.xml(api.xml(r["href"]).find(NS + "Links")[-1].get("Href"))
        assert {p.get("UID") for p in points} == {
            u
            for u, p in truth["vm_replica_points"].items()
            if p["replica_uid"] == uid and not p["placeholder"]
        }


# ---------------------------------------------------------------------- query service
DOCUMENTED = {
    "Job": "UID Name Description NextRun JobType Platform ScheduleConfigured ScheduleEnabled BackupServerUid BackupServerName",
    "AgentBackupJob": "UID Name Description JobType Platform ScheduleConfigured ScheduleEnabled BackupServerUid BackupServerName",
    "BackupJobSession": "UID Name JobType JobUid JobName CreationTime EndTime State Result IsRetry BackupServerUid BackupServerName",
    "BackupTaskSession": "UID Name CreationTime EndTime State Result Reason TotalSize JobSessionUid JobUid JobName BackupServerUid BackupServerName VmDisplayName",
    "Repository": "UID Name FreeSpace Capacity BackupServerUid BackupServerName",
    "Backup": "UID Name JobUid JobName RepositoryUid RepositoryName Platform BackupType",
    "RestorePoint": "UID Name CreationTime BackupUid BackupName BackupServerUid BackupServerName",
    "VmRestorePoint": "UID Name CreationTime Type Algorithm RestorePointId RestorePointName VmDisplayName BackupServerUid BackupServerName",
    "BackupFile": "UID Name CreationTimeUTC BackupSize DataSize CompressRatio FileType BackupUid BackupName BackupServerUid BackupServerName",
    "Replica": "UID Name JobUid JobName RepositoryUid RepositoryName",
}
SAMPLE = {
    "CreationTime": '"2025-08-10T00:00:00Z"',
    "CreationTimeUTC": '"2025-08-10T00:00:00Z"',
    "EndTime": '"2025-08-10T00:00:00Z"',
    "NextRun": '"2025-08-10T00:00:00Z"',
    "State": "Stopped",
    "Result": "Success",
    "Type": "Full",
    "Algorithm": "Full",
    "IsRetry": "false",
    "ScheduleConfigured": "true",
    "ScheduleEnabled": "true",
    "JobType": "Backup",
    "Platform": "VMware",
    "BackupType": "Standard",
    "FileType": "vbk",
}
NUMERIC = {"TotalSize", "FreeSpace", "Capacity", "BackupSize", "DataSize", "CompressRatio"}


@pytest.mark.parametrize("type_", sorted(DOCUMENTED))
def test_documented_parameters_filter_and_sort(api, type_):
    for name in DOCUMENTED[type_].split():
        value = SAMPLE.get(name, "1" if name in NUMERIC else '"x"')
        if type_ == "BackupTaskSession" and name == "State":
            value = "Completed"
        if type_ == "AgentBackupJob" and name in ("JobType", "Platform"):
            value = {"JobType": "AgentBackup", "Platform": "AgentForLinux"}[name]
        r = api.get("/query", type=type_, filter=f"{name}!={value}", sortDesc=name, pageSize="5")
        assert r.status_code == 200, (type_, name, r.text[:200])


@pytest.mark.parametrize(
    "type_,name",
    [
        ("BackupTaskSession", "VmUid"),
        ("BackupFile", "DeduplicationRatio"),
        ("BackupFile", "CreationTime"),
        ("RestorePoint", "BackupDate"),
        ("VmRestorePoint", "RestorePointUid"),
        ("VmRestorePoint", "HierarchyObjRef"),
        ("VmRestorePoint", "BackupUid"),
        ("Repository", "Kind"),
        ("Backup", "BackupServerUid"),
        ("Replica", "Platform"),
        ("AgentBackupJob", "NextRun"),
        ("BackupJobSession", "Progress"),
    ],
)
def test_undocumented_parameters_are_400(api, type_, name):
    r = api.get("/query", type=type_, filter=f'{name}=="x"')
    assert r.status_code == 400 and ET.fromstring(r.content).get("StatusCode") == "400"  # noqa: S314
    assert api.get("/query", type=type_, sortAsc=name).status_code == 400


def test_filters_select_what_truth_says(api, truth):
    rps, vrps, files = truth["restore_points"], truth["vm_restore_points"], truth["backup_files"]
    cut = datetime(2025, 8, 10, 6, 0, tzinfo=UTC)
    assert api.uids("RestorePoint", 'CreationTime>="2025-08-10T06:00:00Z"') == {
        u for u, r in rps.items() if r["backup_date_utc"] >= cut
    }
    assert api.uids("BackupFile", 'CreationTimeUTC>="2025-08-10T06:00:00Z"') == {
        u for u, r in files.items() if r["creation_time_utc"] >= cut
    }
    rp = next(iter(rps))
    want = {u for u, r in vrps.items() if r["restore_point_uid"] == rp}
    assert want and api.uids("VmRestorePoint", f'RestorePointId=="{rp}"') == want
    assert api.uids("VmRestorePoint", f"RestorePointId=={rp.rsplit(':', 1)[-1]}") == want  # a bare GUID
    server = next(iter(truth["backup_servers"]))
    assert api.uids("VmRestorePoint", f'BackupServerUid=="{server}";Type==Full') == {
        u for u, r in vrps.items() if r["backup_server_uid"] == server and r["point_type"] == "Full"
    }
    backup = next(r for r in truth["backups"].values() if r["job_uid"] and r["backup_type"] == "Standard")
    assert backup["uid"] in api.uids("Backup", f"JobUid=={backup['job_uid'].rsplit(':', 1)[-1]}")
    agent = next(r for r in truth["backups"].values() if r["backup_type"] == "ParentBackup")
    via_agent_urn = api.uids(
        "Backup", f'JobUid=="urn:veeam:AgentBackupJob:{agent["job_uid"].rsplit(":", 1)[-1]}"'
    )
    assert via_agent_urn == {u for u, r in truth["backups"].items() if r["job_uid"] == agent["job_uid"]}
    assert api.uids("BackupJobSession", "JobType==ImmediateBackupCopyWorker;State==Working")
    assert api.uids("BackupJobSession", "State==Idle") == {
        u for u, r in truth["backup_job_sessions"].items() if r["state"] == "Idle"
    }
    assert api.uids("BackupFile", "CompressRatio>2.5") == {
        u for u, r in files.items() if r["compress_ratio"] > 2.5
    }
    assert api.uids("Repository", "Capacity<0") == {
        u for u, r in truth["repositories"].items() if r["capacity"] is None
    }
    assert (
        api.get("/query", type="BackupJobSession", filter='JobType=="Backup"').status_code == 400
    )  # quoted enum
    assert api.uids("Job", "Platform==HyperV") == {
        u for u, r in truth["jobs"].items() if (r["platform"] or "").lower() == "hyperv"
    }
    assert api.uids("Job", "ScheduleEnabled==false") == {
        u for u, r in truth["jobs"].items() if r["schedule_enabled"] is False
    }
    sorted_rps = [el.get("UID") for el in api.query("RestorePoint", "References", 50, sortAsc="CreationTime")]
    assert [rps[u]["backup_date_utc"] for u in sorted_rps] == sorted(
        r["backup_date_utc"] for r in rps.values()
    )


def test_collections_and_children(api, truth, world):
    assert api.xml("/jobs").tag == NS + "EntityReferences"
    assert len(api.xml("/jobs", format="Entity")) == sum(
        1 for r in truth["jobs"].values() if not r["placeholder"]
    ) - len(world.backup.agent_jobs) - len(world.backup.nas_jobs)
    assert api.xml("/agents/jobs", format="Entity")[0].tag == NS + "AgentBackupJob"
    assert api.xml("/nas/jobs", format="Entity")[0].tag == NS + "NASJob"
    assert {r.get("UID") for r in api.xml("/nas/jobs")} == {
        f"urn:veeam:NasJob:{j.guid}" for j in world.backup.nas_jobs
    }
    assert {r.get("UID") for r in api.xml("/backupSessions")} == set(
        truth["backup_job_sessions"]
    )  # 14 days < 30
    assert len(api.xml("/backupTaskSessions")) == len(truth["backup_task_sessions"])
    backup = next(r for r in truth["backups"].values() if r["backup_type"] == "Standard" and r["job_uid"])
    el = api.xml(backup["href"])
    rp_list = api.xml(link(el, "Down", "RestorePointReferenceList").get("Href"))
    assert {r.get("UID") for r in rp_list} == {
        u for u, r in truth["restore_points"].items() if r["backup_uid"] == backup["uid"]
    }
    parent = next(r for r in truth["backups"].values() if r["backup_type"] == "ParentBackup")
    kids = api.xml(link(api.xml(parent["href"]), "Down", "BackupList").get("Href"))
    assert {k.get("UID") for k in kids} == {
        u for u, r in truth["backups"].items() if r["parent_backup_uid"] == parent["uid"]
    }
    assert all(k.tag == NS + "Backup" for k in kids)
    rp = next(iter(truth["restore_points"].values()))
    rp_el = api.xml(rp["href"])
    files = api.xml(next(x for x in links(rp_el) if x.get("Rel") == "Related").get("Href"))
    assert files and all(truth["backup_files"][f.get("UID")]["backup_uid"] == rp["backup_uid"] for f in files)
    repo = next(iter(truth["repositories"].values()))
    assert {r.get("UID") for r in api.xml(repo["href"].replace("?format=Entity", "/backups"))} == {
        u for u, r in truth["backups"].items() if r["repository_uid"] == repo["uid"]
    }
    assert api.get("/backupSessions/00000000-0000-4000-8000-000000000000").status_code == 404
    assert api.get("/agents/jobs/00000000-0000-4000-8000-000000000000", format="Entity").status_code == 404
    assert api.get("/agents/nothing").status_code == 404


def test_plain_session_collections_hold_30_days():
    w = World(seed=9, servers=1, jobs=0, backup_jobs=1, agent_jobs=0, copy_jobs=0, vms_per_job=2, days=40)
    with Simulator(w) as s:
        api = Api(s)
        t = s.truth()["backup_job_sessions"]
        recent = {u for u, r in t.items() if r["creation_time_utc"] >= NOW - timedelta(days=30)}
        assert recent and len(recent) < len(t)
        assert {r.get("UID") for r in api.xml("/backupSessions")} == recent
        assert api.uids("BackupJobSession") == set(t)


# ---------------------------------------------------------------------- retention
def test_retention_removes_points_as_time_advances():
    w = World(seed=11, days=6, retention_days=3, quirks=Quirks())
    with Simulator(w) as s:
        api = Api(s)
        before = s.truth()
        cutoff = NOW - timedelta(days=3)
        assert all(r["backup_date_utc"] >= cutoff for r in before["restore_points"].values())
        assert all(
            r["creation_time_utc"] >= cutoff
            for r in before["vm_replica_points"].values()
            if not r["placeholder"]
        )
        assert s.truth()["backup_job_sessions"].keys() == before["backup_job_sessions"].keys()
        oldest = min(before["restore_points"].values(), key=lambda r: r["backup_date_utc"])
        victims = [r for r in before["vm_restore_points"].values() if r["restore_point_uid"] == oldest["uid"]]
        files = [r for r in before["backup_files"].values() if r["backup_uid"] == oldest["backup_uid"]]
        w.advance(timedelta(days=1))
        after = s.truth()
        cutoff += timedelta(days=1)
        assert api.get(oldest["href"]).status_code == 404
        assert oldest["uid"] not in api.uids("RestorePoint")
        for v in victims:
            assert api.get(v["href"]).status_code == 404
        gone_files = [f for f in files if f["uid"] not in after["backup_files"]]
        assert gone_files and all(api.get(f["href"]).status_code == 404 for f in gone_files)
        assert all(r["backup_date_utc"] >= cutoff for r in after["restore_points"].values())
        listed = api.uids("VmRestorePoint")
        assert listed == {u for u, r in after["vm_restore_points"].items() if not r["placeholder"]}
        # tasks keep their Related link to a removed point: a placeholder, deleted in the warehouse
        dead = [r for r in after["vm_restore_points"].values() if r["placeholder"]]
        assert dead and all(r["creation_time_utc"] is None and r["uid"] not in listed for r in dead)
        deleted = w.truth_deleted(s.origin)
        assert deleted["vm_restore_points"] == {r["uid"] for r in dead}
        assert deleted["vm_replica_points"] and not deleted["restore_points"] and not deleted["backups"]
        holder = next(
            r for r in after["backup_task_sessions"].values() if r["vm_restore_point_uid"] == dead[0]["uid"]
        )
        assert holder["vm_restore_point_link"] == "link"
        rel = link(api.xml(holder["href"]), "Related", "VmRestorePoint")
        assert (rel.get("Href"), rel.get("Name")) == (dead[0]["href"], dead[0]["name"])
        # inferred links to removed points are gone in a fresh crawl; sessions and tasks stay
        assert after["backup_job_sessions"].keys() >= before["backup_job_sessions"].keys()
        assert not any(
            r["vm_restore_point_link"] == "inferred"
            and r["vm_restore_point_uid"] not in after["vm_restore_points"]
            for r in after["backup_task_sessions"].values()
        )
        replica_dead = [r for r in after["vm_replica_points"].values() if r["placeholder"]]
        assert replica_dead and all(api.get(r["href"]).status_code == 404 for r in replica_dead[:3])
        assert_tables_equal(crawl(api), after)


def test_no_retention_keeps_everything():
    w = World(seed=11, days=3)
    before = w.truth()
    w.advance(timedelta(days=2))
    after = w.truth()
    for table in ("restore_points", "vm_restore_points", "backup_files", "backups", "replicas"):
        assert before[table].keys() <= after[table].keys()
    assert not any(w.truth_deleted().values())


def test_advance_finishes_backup_sessions_and_keeps_the_past():
    w = World(seed=3)
    before = w.truth()
    running = {u for u, r in before["backup_job_sessions"].items() if r["end_time_utc"] is None}
    w.advance(timedelta(hours=13))
    after = w.truth()
    for uid, row in before["backup_job_sessions"].items():
        if uid not in running:
            assert after["backup_job_sessions"][uid] == row
    for uid, row in before["backup_task_sessions"].items():
        if row["end_time_utc"] is not None:
            assert after["backup_task_sessions"][uid] == row
    for table in ("restore_points", "vm_restore_points", "backup_files", "backups", "replicas"):
        assert all(after[table][u] == r for u, r in before[table].items())
    finished = [u for u in running if after["backup_job_sessions"][u]["state"] == "Stopped"]
    assert finished and all(after["backup_job_sessions"][u]["end_time_utc"] for u in finished)
    assert len(after["backup_task_sessions"]) > len(before["backup_task_sessions"])
    assert any(after["jobs"][u]["next_run_utc"] != r["next_run_utc"] for u, r in before["jobs"].items())


def test_collection_lag_delays_a_servers_backup_side():
    """A backup server EM collects 12 h late (a whole run period) shows its sessions and points as
    they were then; once collected, they arrive with their original times (em-api.md, collection lag
    per backup server)."""
    w = World(seed=13, days=3, quirks=Quirks(collection_lag_hours={1: 12}))
    with Simulator(w) as s:
        api = Api(s)
        lagging = w.servers[1].uid
        before = s.truth()
        assert_tables_equal(crawl(api), before)
        late = [r for r in before["backup_job_sessions"].values() if r["backup_server_uid"] == lagging]
        assert late and max(r["creation_time_utc"] for r in late) < NOW - timedelta(hours=12)
        others = [r for r in before["backup_job_sessions"].values() if r["backup_server_uid"] != lagging]
        assert max(r["creation_time_utc"] for r in others) > NOW - timedelta(hours=12)
        w.set_collection_lag(1, 0)
        after = s.truth()
        delivered = set(after["backup_job_sessions"]) - set(before["backup_job_sessions"])
        assert delivered and all(
            after["backup_job_sessions"][u]["backup_server_uid"] == lagging for u in delivered
        )
        assert set(after["vm_restore_points"]) > set(before["vm_restore_points"])
        assert_tables_equal(crawl(api), after)


def test_version_quirks_off_answers_like_the_newest_server():
    w = World(seed=2, days=2, quirks=Quirks(version_quirks=False))
    t = w.truth()
    assert all(r["vm_uid"] for r in t["backup_task_sessions"].values() if "." not in r["vm_display_name"])
    assert {r["vm_restore_point_link"] for r in t["backup_task_sessions"].values()} <= {"link", None}
    assert all(r["vm_name"] for r in t["vm_restore_points"].values())
    assert "BackupCopy" not in {r["job_type"] for r in t["jobs"].values()}
