"""Recorded real bodies are the judge (tests/payloads/em-samples/, copied verbatim from the shared
samples): for each recorded body of a type the simulator serves, the simulator's answer to the same
request shape, fetched over a real socket, has the same root element and namespace, namespace
declarations, attribute sets per element (order is not significant), child elements in the same
relative order (the simulator may omit an optional one where EM does), Link Rel/Type pairs in the same
order (a link repeated once per object the entity names, like a session's restore points, counts as
one), and PagingInfo with First/Last (Next only before the last page). ElementTree only."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from simapi import Api

from etl.simulator import Faults, Quirks, Simulator, World
from etl.simulator.world import V13

SAMPLES = Path(__file__).resolve().parents[1] / "payloads" / "em-samples"
EM = "http://www.veeam.com/ent/v1.0"
NS = "{" + EM + "}"
# Elements EM leaves out where they do not apply (em-api.md "Entities": `?`): the simulator may lack
# them where a recorded body has them, or have them where it does not.
OPTIONAL = {"EndTimeUTC", "FailureMessage", "VmName", "WcfPort", "VbrCertificateThumbprint", "VmUid"}
# Links EM repeats once per object the entity names (em-samples/query-v12-copy-and-retry-sessions.xml:
# a session's six restore points): their number is data, not shape.
REPEATED = {("Related", "RestorePointReference")}


# ---------------------------------------------------------------------- reading
def parse(body: bytes) -> tuple[ET.Element, set[tuple[str, str]]]:
    """The root element and the namespace declarations made on it."""
    decls: set[tuple[str, str]] = set()
    for event, item in ET.iterparse(io.BytesIO(body), events=("start-ns", "start")):  # noqa: S314
        if event == "start":
            break
        decls.add(item)
    return ET.fromstring(body), decls  # noqa: S314 - a recorded body or the simulator's


def local(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def links(el: ET.Element) -> list[ET.Element]:
    box = el.find(NS + "Links")
    return [] if box is None else list(box)


def fields(el: ET.Element) -> list[ET.Element]:
    return [c for c in el if local(c) != "Links"]


def lexical(text: str | None) -> str:
    """What kind of value a field holds, so a number stays a number and a date a date."""
    t = (text or "").strip()
    if not t:
        return "empty"
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z", t):
        return "datetime"
    if re.fullmatch(r"-?\d+", t):
        return "int"
    if t in ("true", "false"):
        return "bool"
    if t.startswith("urn:"):
        return ":".join(t.split(":")[:3])
    return "text"


def href_shape(href: str, ignore: frozenset = frozenset()) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(href)
    return parts.path, [(k, v) for k, v in parse_qsl(parts.query) if k not in ignore]


# ---------------------------------------------------------------------- comparing
def distinct_links(el: ET.Element) -> list[ET.Element]:
    """The links of `el`, a run of one REPEATED Rel/Type pair counted once."""
    out: list[ET.Element] = []
    for x in links(el):
        pair = (x.get("Rel"), x.get("Type"))
        if not (out and pair in REPEATED and pair == (out[-1].get("Rel"), out[-1].get("Type"))):
            out.append(x)
    return out


def same_links(rec: ET.Element, got: ET.Element, what: str) -> None:
    want = [(x.get("Rel"), x.get("Type")) for x in distinct_links(rec)]
    have = [(x.get("Rel"), x.get("Type")) for x in distinct_links(got)]
    assert have == want, f"{what}: Link Rel/Type pairs"
    for r, g in zip(distinct_links(rec), distinct_links(got), strict=True):
        assert local(g) == local(r) == "Link"
        assert set(g.attrib) == set(r.attrib), f"{what}: attributes of Link {r.get('Rel')}/{r.get('Type')}"


def same_entity(rec: ET.Element, got: ET.Element, *, same_tag: bool = True) -> None:
    what = rec.get("Type")
    assert got.get("Type") == rec.get("Type")
    if same_tag:
        assert got.tag == rec.tag
    assert set(got.attrib) == set(rec.attrib), f"{what}: attribute set"
    assert local(got[0]) == local(rec[0]) == "Links", f"{what}: Links come first"
    same_links(rec, got, what)
    want = [local(c) for c in fields(rec)]
    have = [local(c) for c in fields(got)]
    assert set(want) - set(have) <= OPTIONAL, f"{what}: missing {set(want) - set(have)}"
    assert set(have) - set(want) <= OPTIONAL, f"{what}: unexpected {set(have) - set(want)}"
    assert [n for n in have if n in want] == [n for n in want if n in have], f"{what}: element order"
    for r in fields(rec):
        g = got.find(r.tag)
        if g is not None and "empty" not in (lexical(r.text), lexical(g.text)):
            assert lexical(g.text) == lexical(r.text), f"{what}.{local(r)}: {g.text!r} vs {r.text!r}"
        if g is not None:
            assert set(g.attrib) == set(r.attrib)


def same_paging(rec: ET.Element, got: ET.Element, ignore: frozenset) -> None:
    r, g = rec.find(NS + "PagingInfo"), got.find(NS + "PagingInfo")
    assert set(g.attrib) == set(r.attrib)
    assert {k: g.get(k) for k in g.attrib} == {k: r.get(k) for k in r.attrib}
    assert [local(c) for c in g] == [local(c) for c in r]
    same_links(r, g, "PagingInfo")
    rels = [x.get("Rel") for x in links(g)]
    if rels:
        last = g.get("PageNum") == g.get("PagesCount")
        assert rels == (["First", "Last"] if last else ["First", "Next", "Last"])
    for x, y in zip(links(r), links(g), strict=True):
        assert href_shape(y.get("Href"), ignore) == href_shape(x.get("Href"), ignore)


def same_result(sample: str, body: bytes, *, ignore_params=("filter",), same_tag: bool = True) -> None:
    """A QueryResult from the simulator against a recorded one."""
    rec, rec_ns = parse((SAMPLES / sample).read_bytes())
    got, got_ns = parse(body)
    assert got.tag == rec.tag == NS + "QueryResult"
    assert got_ns == rec_ns, "namespace declarations on QueryResult"
    assert set(got.attrib) == set(rec.attrib)
    assert [local(c) for c in got] == [local(c) for c in rec]
    box_r, box_g = rec[0], got[0]
    assert [local(c) for c in box_g] == [local(c) for c in box_r], "wrapper inside Entities/Refs"
    items_r = [e for w in box_r for e in (w if local(box_r) == "Entities" else [w])]
    items_g = [e for w in box_g for e in (w if local(box_g) == "Entities" else [w])]
    assert len(items_g) == len(items_r)
    for r, g in zip(items_r, items_g, strict=True):
        same_entity(r, g, same_tag=same_tag)
    same_paging(rec, got, frozenset(ignore_params))


# ---------------------------------------------------------------------- serving
class Em:
    """A simulator and a logged-on session, for one world."""

    def __init__(self, world: World, faults: Faults | None = None):
        self.sim = Simulator(world, faults=faults).start()
        self.api = Api(self.sim)

    def get(self, path_and_query: str) -> httpx.Response:
        return self.api.get(self.sim.url + path_and_query)

    def close(self):
        self.sim.stop()


@pytest.fixture
def em():
    made: list[Em] = []

    def make(world: World, faults: Faults | None = None) -> Em:
        made.append(Em(world, faults))
        return made[-1]

    yield make
    for e in made:
        e.close()


def one(em_: Em, type_: str, uid: str) -> bytes:
    r = em_.get(f'/query?type={type_}&format=Entities&pageSize=500&page=1&filter=UID=="{uid}"')
    assert r.status_code == 200, r.text
    return r.content


# ---------------------------------------------------------------------- the recorded bodies
def test_backup_server_v13(em):
    e = em(World(seed=3, servers=1, jobs=1, days=1, quirks=Quirks(server_versions=(V13,))))
    r = e.get("/query?type=BackupServer&format=Entities&pageSize=500&page=1")
    same_result("backup-server-v13.xml", r.content, ignore_params=())


def test_backup_server_before_v13_omits_the_v13_elements(em):
    e = em(World(seed=3, servers=1, jobs=1, days=1, quirks=Quirks(server_versions=("12.3.1.1139",))))
    r = e.get("/query?type=BackupServer&format=Entities&pageSize=500&page=1")
    same_result("backup-server-v13.xml", r.content, ignore_params=())
    assert b"<WcfPort>" not in r.content and b"<Port>9392</Port>" in r.content


def test_job_session_waiting_repository(em):
    w = World(seed=1, jobs=12, days=2, quirks=Quirks(extra_states=True))
    e = em(w)
    waiting = [
        u for u, r in e.sim.truth()["replica_job_sessions"].items() if r["state"] == "WaitingRepository"
    ]
    assert waiting
    same_result("query-replica-job-session-waiting-repository.xml", one(e, "ReplicaJobSession", waiting[0]))


def test_running_job_session_has_the_waiting_shape(em):
    e = em(World(seed=1, jobs=12, days=2))
    rows = e.sim.truth()["replica_job_sessions"]
    running = next(u for u, r in rows.items() if r["state"] == "Working")
    same_result("query-replica-job-session-waiting-repository.xml", one(e, "ReplicaJobSession", running))


def test_finished_job_session(em):
    """The recorded element is named `BackupJobSession` for `Type="ReplicaJobSession"`; the simulator
    names its elements by type, so all but the element name is compared."""
    e = em(World(seed=1, jobs=3, days=2))
    rows = e.sim.truth()["replica_job_sessions"]
    done = next(u for u, r in rows.items() if r["result"] == "Success" and not r["is_retry"])
    same_result("query-element-name-not-type.xml", one(e, "ReplicaJobSession", done), same_tag=False)


@pytest.mark.parametrize("version", [V13, "12.1.2.172"])
def test_task_session(em, version):
    e = em(World(seed=4, servers=1, jobs=4, days=3, quirks=Quirks(server_versions=(version,))))
    rows = e.sim.truth()["replica_task_sessions"]
    warned = next(u for u, r in rows.items() if r["result"] == "Warning" and r["replica_point_uid"])
    body = one(e, "ReplicaTaskSession", warned)
    same_result("query-task-sessions-v13-extras.xml", body)
    assert (b"<VmUid>" in body) == (version == V13)


def test_references_page(em):
    e = em(World(seed=3, servers=1, jobs=1, days=1))
    r = e.get("/query?type=backupServer&pageSize=1&page=1")
    same_result("query-references-page.xml", r.content, ignore_params=())


def test_references_page_before_the_last(em):
    e = em(World(seed=3, servers=3, jobs=1, days=1))
    r = e.get("/query?type=backupServer&pageSize=1&page=1")
    got, _ = parse(r.content)
    info = got.find(NS + "PagingInfo")
    assert info.get("PagesCount") == "3"
    assert [x.get("Rel") for x in links(info)] == ["First", "Next", "Last"]
    rec, _ = parse((SAMPLES / "query-references-page.xml").read_bytes())
    same_entity(rec.find(NS + "Refs")[0], got.find(NS + "Refs")[0])


EMPTY = '/query?type=ReplicaTaskSession&format=Entities&pageSize=500&page=1&filter=Name=="nothing@all"'


def test_empty_result_as_an_empty_list(em):
    e = em(World(seed=3, jobs=1, days=1))
    same_result("query-empty-list.xml", e.get(EMPTY).content)


def test_empty_result_as_bare_entities(em):
    e = em(World(seed=3, jobs=1, days=1, quirks=Quirks(bare_empty_results=True)))
    same_result("query-empty-entities.xml", e.get(EMPTY).content)


def test_error_500(em):
    e = em(World(seed=3, jobs=1, days=1), Faults(server_error=1.0, max_per_request=99))
    r = e.get("/query?type=ReplicaJobSession&format=Entities&pageSize=500&page=1")
    assert r.status_code == 500
    rec, rec_ns = parse((SAMPLES / "error-500.xml").read_bytes())
    got, got_ns = parse(r.content)
    assert got.tag == rec.tag == NS + "Error"
    assert got_ns == rec_ns and set(got.attrib) == set(rec.attrib)
    assert got.get("StatusCode") == "500" and got.get("Message") == rec.get("Message")
    assert [local(c) for c in got] == [local(c) for c in rec] == ["FirstChanceExceptionMessage"]


@pytest.mark.parametrize("query", ["", "?type=ReplicaTaskSession&format=Entities&pageSize=500&page=1"])
def test_query_service_menu(em, query):
    e = em(World(seed=3, jobs=1, days=1))
    logon, _ = parse(e.api.logon_body)
    svc = next(x for x in links(logon) if x.get("Type") == "QueryService")
    rec, rec_ns = parse((SAMPLES / "querysvc-menu.xml").read_bytes())
    assert svc.get("Rel") == "Down"
    assert urlsplit(svc.get("Href")).path == urlsplit(rec.get("Href")).path  # /api/querySvc
    r = e.api.get(svc.get("Href") + query)
    assert r.status_code == 200
    got, got_ns = parse(r.content)
    assert got.tag == rec.tag == NS + "QuerySvc"
    assert got_ns == rec_ns and set(got.attrib) == set(rec.attrib)
    assert got.get("Type") == rec.get("Type") == "QueryService"
    assert href_shape(got.get("Href")) == href_shape(rec.get("Href"))
    assert [local(c) for c in got] == [local(c) for c in rec] == ["Links"]
    same_links(rec, got, "QuerySvc")
    for x, y in zip(links(rec), links(got), strict=True):
        if x.get("Rel") == "Down":
            assert href_shape(y.get("Href")) == href_shape(x.get("Href"))
        else:
            assert href_shape(y.get("Href"))[0].rsplit("/", 1)[0] == "/api/logonSessions"


# ---------------------------------------------------------------------- agent computers, file shares
def agent_world() -> World:
    """One backup server of the newest generation with two agent jobs, a file-share job, backup and copy
    jobs, and a week of runs."""
    return World(
        seed=3, servers=1, jobs=1, days=7, backup_jobs=2, copy_jobs=2, quirks=Quirks(server_versions=(V13,))
    )


def test_agent_job_sessions_parent_and_per_computer_child(em):
    e = em(agent_world())
    parent = next(
        js
        for js in e.sim.world.backup.sessions
        if js.children and js.end <= js.server.view and js.result == 0
    )
    child = next(c for c in parent.children if c.result == 0)
    filter_ = f'UID=="{parent.uid}",UID=="{child.uid}"'
    r = e.get(f"/query?type=BackupJobSession&format=Entities&pageSize=500&page=1&filter={filter_}")
    same_result("query-agent-job-sessions.xml", r.content)


def test_agent_computer_task_session(em):
    e = em(agent_world())
    truth = e.sim.truth()
    sessions = truth["backup_job_sessions"]
    task = next(
        u
        for u, t in truth["backup_task_sessions"].items()
        if sessions[t["job_session_uid"]]["job_type"] == "AgentManagement" and t["result"] == "Success"
    )
    body = one(e, "BackupTaskSession", task)
    same_result("query-agent-task-session.xml", body)
    assert b"<VmUid>" not in body  # an agent computer has no hierarchy reference


def test_agent_restore_point(em):
    e = em(agent_world())
    point = next(iter(e.sim.truth()["agent_restore_points"]))
    same_result("query-agent-restore-points.xml", one(e, "AgentRestorePoint", point))
    ref = e.api.xml(e.sim.url + "/agents/agentRestorePoints/" + point.rsplit(":", 1)[-1])
    assert ref.tag == NS + "EntityRef" and ref.get("Type") == "AgentRestorePointReference"


def test_nas_job_entity_and_reference(em):
    e = em(agent_world())
    job = e.sim.world.backup.nas_jobs[0]
    rec, _ = parse((SAMPLES / "nas-job-entity.xml").read_bytes())
    got, _ = parse(e.get(f"/nas/jobs/{job.guid}?format=Entity").content)
    assert local(got) == local(rec) == "NASJob"
    same_entity(rec, got)
    (r,) = list(rec.find(NS + "Includes"))  # one NASObject per file share the job includes
    got_objects = list(got.find(NS + "Includes"))
    assert got_objects
    for g in got_objects:
        assert local(g) == local(r) == "NASObject" and set(g.attrib) == set(r.attrib)
        assert g.get("Type") == r.get("Type") == "NasObject"
        assert [local(c) for c in g] == [local(c) for c in r]
        assert [lexical(c.text) for c in g][:2] == [lexical(c.text) for c in r][:2]
    rec, _ = parse((SAMPLES / "nas-job-reference.xml").read_bytes())
    got, _ = parse(e.get(f"/nas/jobs/{job.guid}").content)
    same_entity(rec, got)
    entity = next(x for x in links(got) if x.get("Rel") == "Alternate").get("Href")
    assert href_shape(entity)[1] == [("format", "Entity")] and e.api.get(entity).status_code == 200


def test_nas_backup_session(em):
    e = em(agent_world())
    truth = e.sim.truth()
    session = next(
        u
        for u, s in truth["backup_job_sessions"].items()
        if s["job_type"] == "NasBackup" and s["result"] == "Success"
    )
    body = one(e, "BackupJobSession", session)
    same_result("query-nas-backup-session.xml", body)
    assert truth["jobs"][truth["backup_job_sessions"][session]["job_uid"]]["placeholder"] is False


def test_object_storage_repository(em):
    e = em(World(seed=3, servers=1, jobs=1, days=1))
    r = e.get(
        '/query?type=Repository&format=Entities&pageSize=500&page=1&filter=BackupServerName=="vbr01.lab.local"'
    )
    same_result("query-repositories-object-storage.xml", r.content)
    got, _ = parse(r.content)
    s3 = [el for el in got.iter(NS + "Repository") if el.findtext(NS + "Kind") == "AmazonS3Compatible"]
    assert len(s3) == 1
    assert (s3[0].findtext(NS + "Capacity"), s3[0].findtext(NS + "FreeSpace")) == ("-1", "-1")


def test_task_in_progress_already_saying_success(em):
    e = em(World(seed=1, servers=1, jobs=1, days=2, quirks=Quirks(server_versions=(V13,))))
    rows = e.sim.truth()["backup_task_sessions"]
    running = next(u for u, t in rows.items() if t["state"] == "InProgress")
    assert rows[running]["result"] == "Success" and rows[running]["end_time_utc"] is None
    same_result("query-task-inprogress-result-success.xml", one(e, "BackupTaskSession", running))


def test_v12_copy_parent_backup_retry_with_restore_point_links_and_copy_worker(em):
    """Each of the three recorded sessions against the simulator's session in the same situation."""
    w = World(seed=1, servers=1, jobs=1, days=7, backup_jobs=2, copy_jobs=1, vms_per_job=12)
    e = em(w)
    b = w.backup
    done = [js for js in b.sessions if js.end <= js.server.view]
    cases = [
        next(js for js in done if js.job_type == "ImmediateBackupCopy" and js.result == 0),
        next(js for js in done if js.is_retry and js.job_type == "Backup" and b.related_rps(js)),
        next(js for js in done if js.job_type == "ImmediateBackupCopyWorker" and js.result == 0),
    ]
    rec_root, rec_ns = parse((SAMPLES / "query-v12-copy-and-retry-sessions.xml").read_bytes())
    recorded = list(rec_root.find(NS + "Entities")[0])
    for rec, js in zip(recorded, cases, strict=True):
        got_root, got_ns = parse(one(e, "BackupJobSession", js.uid))
        assert got_ns == rec_ns and [local(c) for c in got_root] == ["Entities", "PagingInfo"]
        (got,) = list(got_root.find(NS + "Entities")[0])
        same_entity(rec, got)
        assert got.findtext(NS + "JobType") == rec.findtext(NS + "JobType")
        assert got.findtext(NS + "Progress") == rec.findtext(NS + "Progress")  # 0 for the copy parent
    parent_job = cases[0].job.uid.replace("urn:veeam:Job:", "")
    assert e.api.get(f"{e.sim.url}/jobs/{parent_job}").status_code == 200  # the copy job itself
    assert e.api.get(f"{e.sim.url}/jobs/{cases[2].job_guid}").status_code == 404  # its worker "job"


def test_every_recorded_body_is_judged():
    judged = {
        "backup-server-v13.xml",
        "query-replica-job-session-waiting-repository.xml",
        "query-element-name-not-type.xml",
        "query-task-sessions-v13-extras.xml",
        "query-references-page.xml",
        "query-empty-list.xml",
        "query-empty-entities.xml",
        "error-500.xml",
        "querysvc-menu.xml",
        "query-agent-job-sessions.xml",
        "query-agent-task-session.xml",
        "query-agent-restore-points.xml",
        "nas-job-entity.xml",
        "nas-job-reference.xml",
        "query-nas-backup-session.xml",
        "query-repositories-object-storage.xml",
        "query-task-inprogress-result-success.xml",
        "query-v12-copy-and-retry-sessions.xml",
    }
    # the 403 an account's role answers: judged with the simulator's accounts with roles
    restricted = {"error-403-access-denied.xml"}
    assert {p.name for p in SAMPLES.glob("*.xml")} - restricted == judged
    assert (SAMPLES / "README.md").is_file()
