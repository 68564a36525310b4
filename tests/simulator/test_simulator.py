"""Tests for the EM simulator: world determinism and ground truth, HTTP dialect, query service, quirks.

Talks to a real socket with httpx and reads XML with ElementTree only (never etl.parse/etl.client),
so the simulator and the client stay independent readings of the EM format.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from simapi import NS, Api, link, links, text, xml_of

from etl.simulator import Faults, Quirks, Simulator, World

NOW = datetime(2025, 8, 15, 12, 0, tzinfo=UTC)


def ts(text: str | None) -> datetime | None:
    if text is None:
        return None
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,7}))?Z", text)
    assert m, text
    frac = (m.group(7) or "").ljust(7, "0")[:6]
    return datetime(*map(int, m.groups()[:6]), int(frac), tzinfo=UTC)


def guid_of(href: str) -> str:
    return href.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def task_row(el: ET.Element) -> dict:
    srv, rel = link(el, "Up", "BackupServerReference"), link(el, "Related", "VmReplicaPoint")
    return {
        "uid": el.get("UID"),
        "href": el.get("Href"),
        "job_session_uid": text(el, "JobSessionUid"),
        "backup_server_uid": "urn:veeam:BackupServer:" + guid_of(srv.get("Href")),
        "replica_point_uid": None if rel is None else "urn:veeam:VmReplicaPoint:" + guid_of(rel.get("Href")),
        "name": el.get("Name"),
        "vm_display_name": el.get("VmDisplayName"),
        "creation_time_utc": ts(text(el, "CreationTimeUTC")),
        "end_time_utc": ts(text(el, "EndTimeUTC")),
        "state": text(el, "State"),
        "result": text(el, "Result"),
        "reason": text(el, "Reason"),
        "total_size": int(text(el, "TotalSize")),
    }


def session_row(el: ET.Element) -> dict:
    srv = link(el, "Up", "BackupServerReference")
    return {
        "uid": el.get("UID"),
        "href": el.get("Href"),
        "backup_server_uid": "urn:veeam:BackupServer:" + guid_of(srv.get("Href")),
        "job_uid": text(el, "JobUid"),
        "job_name": text(el, "JobName"),
        "job_type": text(el, "JobType"),
        "name": el.get("Name"),
        "creation_time_utc": ts(text(el, "CreationTimeUTC")),
        "end_time_utc": ts(text(el, "EndTimeUTC")),
        "state": text(el, "State"),
        "result": text(el, "Result"),
        "progress": int(text(el, "Progress")),
        "is_retry": text(el, "IsRetry") == "true",
        "failure_message": text(el, "FailureMessage"),
        "placeholder": False,
    }


def point_row(el: ET.Element) -> dict:
    srv, rep = link(el, "Up", "BackupServerReference"), link(el, "Up", "ReplicaReference")
    return {
        "uid": el.get("UID"),
        "href": el.get("Href"),
        "backup_server_uid": "urn:veeam:BackupServer:" + guid_of(srv.get("Href")),
        "replica_uid": "urn:veeam:Replica:" + guid_of(rep.get("Href")),
        "name": el.get("Name"),
        "vm_display_name": el.get("VmDisplayName"),
        "vm_name": text(el, "VmName"),
        "creation_time_utc": ts(text(el, "CreationTimeUTC")),
        "algorithm": text(el, "Algorithm"),
        "point_type": text(el, "PointType"),
        "placeholder": False,
    }


def server_row(el: ET.Element) -> dict:
    wcf = text(el, "WcfPort")
    return {
        "uid": el.get("UID"),
        "href": el.get("Href"),
        "name": el.get("Name"),
        "description": text(el, "Description"),
        "port": int(text(el, "Port")),
        "version": text(el, "Version"),
        "wcf_port": None if wcf is None else int(wcf),
        "vbr_certificate_thumbprint": text(el, "VbrCertificateThumbprint"),
        "placeholder": False,
    }


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


# ---------------------------------------------------------------------- world
def test_determinism():
    a, b, c = World(seed=7).truth(), World(seed=7).truth(), World(seed=8).truth()
    assert a == b
    assert a["replica_task_sessions"].keys() != c["replica_task_sessions"].keys()


def test_counts_are_consistent(world):
    t = world.truth()
    tasks_by_js: dict[str, list] = {}
    for row in t["replica_task_sessions"].values():
        tasks_by_js.setdefault(row["job_session_uid"], []).append(row)
    assert set(tasks_by_js) == set(t["replica_job_sessions"])
    regular = {}
    for js in world.job_sessions:
        vms = sorted(r["vm_display_name"] for r in tasks_by_js[js.uid])
        if not js.is_retry:
            assert vms == sorted(v[0] for v in js.job.vms)
            regular[(js.job.idx, js.k)] = js
    retries = [js for js in world.job_sessions if js.is_retry]
    assert retries, "default world should contain automatic retries"
    for js in retries:
        parent = regular[(js.job.idx, js.k)]
        failed = sorted(r["vm_display_name"] for r in tasks_by_js[parent.uid] if r["result"] == "Failed")
        assert sorted(r["vm_display_name"] for r in tasks_by_js[js.uid]) == failed
        assert js.start > parent.end and t["replica_job_sessions"][js.uid]["is_retry"] is True
    with_point = [r for r in t["replica_task_sessions"].values() if r["result"] in ("Success", "Warning")]
    assert len(with_point) == len(t["vm_replica_points"])
    assert {r["replica_point_uid"] for r in with_point} == set(t["vm_replica_points"])
    bad = [r for r in t["replica_task_sessions"].values() if r["result"] in ("Warning", "Failed")]
    assert 0.03 < len(bad) / len(t["replica_task_sessions"]) < 0.15
    assert all(r["reason"] for r in bad)
    for js in t["replica_job_sessions"].values():
        results = {r["result"] for r in tasks_by_js[js["uid"]]}
        if js["end_time_utc"] is not None:
            worst = "Failed" if "Failed" in results else "Warning" if "Warning" in results else "Success"
            assert js["result"] == worst
    assert any(r["total_size"] > 2**32 for r in t["replica_task_sessions"].values())
    algos = {}
    for p in sorted(t["vm_replica_points"].values(), key=lambda r: r["creation_time_utc"]):
        algos.setdefault((p["replica_uid"], p["vm_display_name"]), []).append(p["algorithm"])
    assert all(a[0] == "Full" and set(a[1:]) <= {"Incremental"} for a in algos.values())


def test_running_sessions_at_now(world):
    t = world.truth()
    running = [r for r in t["replica_job_sessions"].values() if r["end_time_utc"] is None]
    assert running
    for js in running:
        assert (js["state"], js["result"], js["failure_message"]) == ("Working", "None", None)
        assert 0 <= js["progress"] < 100 and js["creation_time_utc"] <= NOW
        tasks = [r for r in t["replica_task_sessions"].values() if r["job_session_uid"] == js["uid"]]
        open_ = [r for r in tasks if r["end_time_utc"] is None]
        assert open_ and all(r["result"] == "None" and r["reason"] is None for r in open_)
        assert all(r["state"] in ("Pending", "InProgress") and r["replica_point_uid"] is None for r in open_)
        assert all(r["state"] == "Completed" for r in tasks if r["end_time_utc"] is not None)
    finished = [r for r in t["replica_job_sessions"].values() if r["end_time_utc"] is not None]
    assert all(r["state"] == "Stopped" and r["progress"] == 100 for r in finished)
    for table in t.values():
        for row in table.values():
            for k, v in row.items():
                assert not isinstance(v, datetime) or (v.tzinfo is UTC and (v <= NOW or k == "next_run_utc"))


def test_advance_finishes_running_and_keeps_the_past():
    w = World(seed=3)
    before = w.truth()
    running = {u for u, r in before["replica_job_sessions"].items() if r["end_time_utc"] is None}
    w.advance(timedelta(hours=13))
    after = w.truth()
    for table, rows in before.items():
        if not table.startswith(("replica_", "vm_replica_", "backup_servers")):
            continue  # the backup side's own advance test is in test_backup.py
        for uid, row in rows.items():
            if table == "replica_job_sessions" and uid in running:
                continue
            if table == "replica_task_sessions" and row["job_session_uid"] in running:
                continue
            assert after[table][uid] == row
    for uid in running:
        assert after["replica_job_sessions"][uid]["state"] == "Stopped"
        assert after["replica_job_sessions"][uid]["end_time_utc"] is not None
    assert len(after["replica_job_sessions"]) > len(before["replica_job_sessions"])
    assert len(after["vm_replica_points"]) > len(before["vm_replica_points"])
    stepped = World(seed=3)
    for _ in range(13):
        stepped.advance(timedelta(hours=1))
    assert stepped.truth() == after


def test_plain_collections_only_last_30_days():
    w = World(seed=9, jobs=2, vms_per_job=2, days=40)
    with Simulator(w) as s:
        api = Api(s)
        t = s.truth()
        recent = {
            u
            for u, r in t["replica_job_sessions"].items()
            if r["creation_time_utc"] >= NOW - timedelta(days=30)
        }
        assert recent and len(recent) < len(t["replica_job_sessions"])
        assert {r.get("UID") for r in api.xml("/replicaSessions")} == recent
        assert len(api.query_all("ReplicaJobSession")) == len(t["replica_job_sessions"])


def test_size_options_scale():
    w = World(servers=3, jobs=40, vms_per_job=20, days=3, runs_per_day=1)
    s = w.stats()
    assert s["replica_task_sessions"] >= 40 * 20 * 2
    assert s["backup_servers"] == 3


# ---------------------------------------------------------------------- HTTP basics
def test_root_logon_logoff(sim):
    c = httpx.Client()
    root = xml_of(c.get(sim.url + "/").content)
    assert root.tag == NS + "EnterpriseManager"
    create = link(root, "Create", "LogonSession")
    assert create.get("Href") == sim.url + "/sessionMngr/?v=latest"
    assert [v.get("Name") for v in root.iter(NS + "SupportedVersion")] == ["v1_5", "v1_6", "v1_7"]

    bad = c.post(create.get("Href"), auth=("demo", "wrong"))
    assert bad.status_code == 401 and bad.headers["WWW-Authenticate"] == "Basic Realm=RestSvc"
    assert xml_of(bad.content).tag == NS + "Error"
    assert c.post(create.get("Href")).status_code == 401

    r = c.post(create.get("Href"), auth=("demo", "demo"))
    assert r.status_code == 201
    token = r.headers["x-RESTSVCSESSIONID"]
    assert "X-RestSvcSessionId=" + token in r.headers["set-cookie"]
    body = xml_of(r.content)
    assert body.tag == NS + "LogonSession" and text(body, "UserName") == "demo"
    types = {x.get("Type") for x in links(body)}
    assert {"QueryService", "BackupServerReferenceList", "ReplicaJobSessionReferenceList"} <= types
    assert link(body, "Down", "QueryService").get("Href") == sim.url + "/querySvc"
    h = {"X-RestSvcSessionId": token}
    assert c.get(sim.url + "/backupServers", headers=h).status_code == 200
    no = c.get(sim.url + "/backupServers")
    assert no.status_code == 401 and xml_of(no.content).get("StatusCode") == "401"
    assert c.get(sim.url + "/backupServers", headers={"X-RestSvcSessionId": "nope"}).status_code == 401
    delete = link(body, "Delete", "LogonSession").get("Href")
    assert c.delete(delete, headers=h).status_code == 204
    assert c.get(sim.url + "/backupServers", headers=h).status_code == 401
    assert sim.requests_by_kind["logon"] >= 3 and sim.requests_by_kind["logoff"] == 1


def test_token_idle_expiry():
    with Simulator(World(jobs=1, days=1), token_idle_timeout=0.0) as s:
        api = Api(s)
        assert api.get("/backupServers").status_code == 401


def test_entity_and_reference_forms(api, world):
    t = world.truth()
    uid, row = next(iter(t["replica_task_sessions"].items()))
    ent_href = row["href"]
    assert ent_href.endswith("?format=Entity") and "/repicaTaskSessions/" in ent_href
    ent = api.xml(ent_href)
    assert ent.tag == NS + "ReplicaTaskSession" and ent.get("Type") == "ReplicaTaskSession"
    assert [x.get("Rel") for x in links(ent)] == ["Up", "Up", "Alternate", "Related"]
    ref_href = link(ent, "Alternate", "ReplicaTaskSessionReference").get("Href")
    ref = api.xml(ref_href)
    assert ref.tag == NS + "EntityRef" and ref.get("Type") == "ReplicaTaskSessionReference"
    assert ref.get("UID") == uid and ref.get("Href") == ref_href and ref.find(NS + "State") is None
    assert link(ref, "Alternate", "ReplicaTaskSession").get("Href") == ent_href
    up = link(ent, "Up", "ReplicaJobSessionReference")
    parent = api.xml(up.get("Href"))
    assert parent.get("UID") == row["job_session_uid"] and parent.get("Name") == up.get("Name")
    down = api.xml(
        link(api.xml(up.get("Href"), format="Entity"), "Down", "ReplicaTaskSessionReferenceList").get("Href")
    )
    assert uid in {r.get("UID") for r in down}
    assert api.get("/replicaSessions/00000000-0000-4000-8000-000000000000").status_code == 404
    coll = api.xml("/replicaSessions", format="Entity")
    assert coll.tag == NS + "ReplicaJobSessions" and len(coll) == len(t["replica_job_sessions"])
    refs = api.xml("/vmReplicaPoints")
    assert refs.tag == NS + "EntityReferences" and refs[0].tag == NS + "Ref"


def test_served_entities_match_truth(api, world):
    t = world.truth()
    for el in api.query_all("ReplicaTaskSession", "Entities", page_size=500):
        assert task_row(el) == t["replica_task_sessions"][el.get("UID")]
    for el in api.query_all("ReplicaJobSession", "Entities", page_size=500):
        assert session_row(el) == t["replica_job_sessions"][el.get("UID")]
    for el in api.query_all("VmReplicaPoint", "Entities", page_size=500):
        assert point_row(el) == t["vm_replica_points"][el.get("UID")]
    servers = [server_row(el) for el in api.query_all("BackupServer", "Entities")]
    assert {r["uid"]: r for r in servers} == t["backup_servers"]
    assert any(r["description"] is None for r in servers) and any(r["wcf_port"] for r in servers)
    # single-entity GETs at the truth hrefs return the same
    for row in list(t["replica_task_sessions"].values())[::97]:
        assert task_row(api.xml(row["href"])) == row


def test_served_entities_match_truth_with_lag_extra_states_and_v13():
    q = Quirks(
        extra_states=True, collection_lag_hours={1: 2.5}, server_versions=("13.0.1.2067", "12.1.2.172")
    )
    w = World(seed=12, servers=3, jobs=12, days=3, quirks=q)
    with Simulator(w) as s:
        api = Api(s)
        for step in range(3):
            t = s.truth()
            got = {
                "replica_task_sessions": {
                    el.get("UID"): task_row(el)
                    for el in api.query_all("ReplicaTaskSession", "Entities", page_size=500)
                },
                "replica_job_sessions": {
                    el.get("UID"): session_row(el)
                    for el in api.query_all("ReplicaJobSession", "Entities", page_size=500)
                },
                "vm_replica_points": {
                    el.get("UID"): point_row(el)
                    for el in api.query_all("VmReplicaPoint", "Entities", page_size=500)
                },
                "backup_servers": {
                    el.get("UID"): server_row(el) for el in api.query_all("BackupServer", "Entities")
                },
            }
            assert got == {table: t[table] for table in got}, step  # the replication side
            w.advance(timedelta(minutes=40))


def test_timestamps_mix_fraction_digits(api):
    r = api.get("/query", type="ReplicaTaskSession", format="Entities", pageSize="300")
    stamps = re.findall(rb"<CreationTimeUTC>([^<]*)</CreationTimeUTC>", r.content)
    assert all(s.endswith(b"Z") for s in stamps)
    digits = {len(s[20:-1]) if b"." in s else 0 for s in stamps}
    assert {0, 3, 6, 7} <= digits


# ---------------------------------------------------------------------- query service
def test_query_paging_walks_every_uid_once(api, world):
    t = world.truth()
    refs = api.query_all("ReplicaTaskSession", page_size=97)
    uids = [r.get("UID") for r in refs]
    assert len(uids) == len(set(uids)) == len(t["replica_task_sessions"])
    root = api.xml("/query", type="replicatasksession", pageSize="97", page="2")
    info = root.find(NS + "PagingInfo")
    assert (info.get("PageNum"), info.get("PageSize")) == ("2", "97")
    assert int(info.get("PagesCount")) == -(-len(uids) // 97)
    default = api.xml("/query", type="ReplicaJobSession").find(NS + "PagingInfo")
    assert default.get("PageSize") == "100"
    past = api.xml("/query", type="ReplicaJobSession", pageSize="50", page="999")
    assert past.find(NS + "Refs") is None  # EM leaves an empty list out (em-api.md "Empty results")
    assert not [x for x in past.iter(NS + "Link") if x.get("Rel") == "Next"]


def test_paging_links_are_escaped_and_encoded(api):
    r = api.get("/query", type="ReplicaTaskSession", pageSize="10", filter='Name!="srv01@x";Result>=Success')
    assert r.status_code == 200
    assert b"&amp;pageSize=10&amp;page=2" in r.content
    assert b"filter=Name%21%3D%22srv01%40x%22%3BResult%3E%3DSuccess" in r.content


def _query_uids(api, type_, flt, **kw) -> set[str]:
    return {r.get("UID") for r in api.query_all(type_, page_size=1000, filter=flt, **kw)}


def test_filter_grammar(api, world):
    t = world.truth()
    tasks = t["replica_task_sessions"]
    sessions = t["replica_job_sessions"]
    cut = datetime(2025, 8, 10, 6, 0, tzinfo=UTC)
    want = {u for u, r in tasks.items() if r["creation_time_utc"] >= cut}
    assert _query_uids(api, "ReplicaTaskSession", 'CreationTime>="2025-08-10T06:00:00Z"') == want
    assert _query_uids(api, "ReplicaTaskSession", "CreationTime>=2025-08-10T06:00:00.0000000Z") == want
    bad = {u for u, r in tasks.items() if r["result"] in ("Warning", "Failed")}
    assert _query_uids(api, "ReplicaTaskSession", "Result>=Warning") == bad
    assert _query_uids(api, "ReplicaTaskSession", "Result==Warning,Result==Failed") == bad
    js_uid = next(iter(sessions))
    want = {u for u, r in tasks.items() if r["job_session_uid"] == js_uid and r["result"] == "Success"}
    assert _query_uids(api, "ReplicaTaskSession", f'JobSessionUid=="{js_uid}";Result==Success') == want
    vm = next(iter(tasks.values()))["vm_display_name"]
    want = {
        u
        for u, r in tasks.items()
        if (r["vm_display_name"] == vm or r["result"] == "Failed") and r["creation_time_utc"] < cut
    }
    got = _query_uids(
        api,
        "ReplicaTaskSession",
        f'(VmDisplayName=={vm.upper()},Result==Failed);CreationTime<"2025-08-10T06:00:00Z"',
    )
    assert got == want
    name = next(r["job_name"] for r in sessions.values() if "&" in r["job_name"] or " " in r["job_name"])
    assert _query_uids(api, "ReplicaJobSession", f'JobName=="{name}"') == {
        u for u, r in sessions.items() if r["job_name"] == name
    }
    assert _query_uids(api, "ReplicaJobSession", "IsRetry==true") == {
        u for u, r in sessions.items() if r["is_retry"]
    }
    running = {u for u, r in sessions.items() if r["end_time_utc"] is None}
    assert _query_uids(api, "ReplicaJobSession", "State==Working") == running
    assert _query_uids(api, "ReplicaJobSession", "Result==None") == running
    assert not _query_uids(api, "ReplicaJobSession", 'EndTime>"2000-01-01T00:00:00Z";State==Working')
    big = {u for u, r in tasks.items() if r["total_size"] > 2**36}
    assert _query_uids(api, "ReplicaTaskSession", f"TotalSize>{2**36}") == big
    assert _query_uids(api, "VmReplicaPoint", "Type==Full") == {
        u for u, r in t["vm_replica_points"].items() if r["point_type"] == "Full"
    }
    assert _query_uids(api, "BackupServer", 'Name=="VBR01.LAB.LOCAL"') == {
        u for u, r in t["backup_servers"].items() if r["name"] == "vbr01.lab.local"
    }
    quoted = api.get("/query", type="ReplicaJobSession", filter='JobName=="say ""hi"""')
    assert quoted.status_code == 200 and xml_of(quoted.content).find(NS + "Refs") is None


@pytest.mark.parametrize(
    "params",
    [
        {"type": "ReplicaTaskSession", "filter": 'CreationTimeUTC>="2025-08-10T06:00:00Z"'},
        {"type": "ReplicaTaskSession", "filter": "Result>=Maybe"},
        {"type": "ReplicaTaskSession", "filter": "(Result==Failed"},
        {"type": "ReplicaTaskSession", "filter": "Result=Failed"},
        {"type": "ReplicaTaskSession", "filter": 'CreationTime>="2025-08-10 06:00:00"'},
        {"type": "ReplicaTaskSession", "filter": "TotalSize>big"},
        {"type": "ReplicaTaskSession", "sortAsc": "Nope"},
        {"type": "ReplicaTaskSession", "pageSize": "0"},
        {"type": "NoSuchType"},
        {},
    ],
)
def test_invalid_queries_are_400(api, params):
    r = api.get("/query", **params)
    assert r.status_code == 400
    err = xml_of(r.content)
    assert err.tag == NS + "Error" and err.get("StatusCode") == "400" and err.get("Message")


def test_sorting(api, world):
    t = world.truth()["replica_job_sessions"]
    asc = [r.get("UID") for r in api.query_all("ReplicaJobSession", page_size=33, sortAsc="CreationTime")]
    assert [t[u]["creation_time_utc"] for u in asc] == sorted(r["creation_time_utc"] for r in t.values())
    desc = [r.get("UID") for r in api.query_all("ReplicaJobSession", page_size=33, sortDesc="CreationTime")]
    assert desc == asc[::-1]
    by_name = [r.get("UID") for r in api.query_all("ReplicaJobSession", page_size=1000, sortAsc="JobName")]
    names = [t[u]["job_name"].casefold() for u in by_name]
    assert names == sorted(names)


def test_query_cache_invalidated_by_advance():
    w = World(seed=5, jobs=3, days=2)
    with Simulator(w) as s:
        api = Api(s)
        before = {r.get("UID") for r in api.query_all("ReplicaJobSession", filter="State==Working")}
        assert before
        c = httpx.Client()
        assert c.post(s.url.replace("/api", "/admin/advance"), params={"hours": "6"}).status_code == 204
        assert (
            not {r.get("UID") for r in api.query_all("ReplicaJobSession", filter="State==Working")} & before
        )
        for uid in before:
            row = w.truth()["replica_job_sessions"][uid]
            assert session_row(api.xml(row["href"])) == row
        truth = c.get(s.url.replace("/api", "/admin/truth")).json()
        assert set(truth["replica_job_sessions"]) == set(w.truth()["replica_job_sessions"])


# ---------------------------------------------------------------------- quirks
def test_quirk_spelling_bom_origin_and_namespace():
    q = Quirks(
        misspelled_hrefs=False,
        bom=True,
        public_origin="http://em01.lab.local:9399",
        prefixed_namespace=True,
        unknown_elements=True,
        shuffle_attributes=True,
        vm_name=False,
    )
    w = World(seed=2, jobs=2, days=2, quirks=q)
    with Simulator(w) as s:
        api = Api(s)
        raw = api.get("/query", type="ReplicaTaskSession", format="Entities").content
        assert raw.startswith(b"\xef\xbb\xbf<?xml") and b"<v:QueryResult xmlns:xsd=" in raw
        assert b' xmlns:v="http://www.veeam.com/ent/v1.0"' in raw
        assert b"<v:Extra>" in raw and b"http://127.0.0.1" not in raw
        root = xml_of(raw)
        t = w.truth()
        for el in root.find(NS + "Entities")[0]:
            assert el.get("Href").startswith("http://em01.lab.local:9399/api/replicaTaskSessions/")
            assert task_row(el) == t["replica_task_sessions"][el.get("UID")]
            path = el.get("Href").split("9399", 1)[1]
            assert api.get(s.url.removesuffix("/api") + path).status_code == 200
            misspelled = path.replace("replicaTaskSessions", "repicaTaskSessions")
            assert api.get(s.url.removesuffix("/api") + misspelled).status_code == 200
        assert all(r["vm_name"] is None for r in t["vm_replica_points"].values())
        assert all(
            r["href"].startswith("http://em01.lab.local:9399/") for r in t["replica_job_sessions"].values()
        )
        orders = {tuple(el.attrib) for el in root.iter(NS + "ReplicaTaskSession")}
        assert len(orders) > 1


def test_quirk_no_related_links_and_no_declaration():
    w = World(seed=2, jobs=2, days=2, quirks=Quirks(related_links=False, xml_declaration=False))
    with Simulator(w) as s:
        raw = Api(s).get("/query", type="ReplicaTaskSession", format="Entities").content
        assert raw.startswith(b"<QueryResult") and b'Rel="Related"' not in raw
    assert all(r["replica_point_uid"] is None for r in w.truth()["replica_task_sessions"].values())


def test_quirk_deleted_server_and_points():
    w = World(seed=4, servers=3, jobs=6, days=4, quirks=Quirks(deleted_server=True, deleted_point=True))
    t = w.truth()
    placeholders = [r for r in t["backup_servers"].values() if r["placeholder"]]
    assert len(placeholders) == 1
    ph = placeholders[0]
    assert all(ph[k] is None for k in ("description", "port", "version", "wcf_port"))
    dead_points = [r for r in t["vm_replica_points"].values() if r["placeholder"]]
    assert dead_points and all(r["backup_server_uid"] is None for r in dead_points)
    with Simulator(w) as s:
        api = Api(s)
        t = w.truth()
        ph = t["backup_servers"][ph["uid"]]
        assert api.get(ph["href"]).status_code == 404
        assert api.get(ph["href"] + "?format=Entity").status_code == 404
        assert ph["uid"] not in {r.get("UID") for r in api.query_all("BackupServer")}
        orphan = next(r for r in t["replica_task_sessions"].values() if r["backup_server_uid"] == ph["uid"])
        el = api.xml(orphan["href"])
        up = link(el, "Up", "BackupServerReference")
        assert (up.get("Href"), up.get("Name")) == (ph["href"], ph["name"])
        dead = next(r for r in t["vm_replica_points"].values() if r["placeholder"])
        assert api.get(dead["href"]).status_code == 404
        assert dead["uid"] not in {r.get("UID") for r in api.query_all("VmReplicaPoint", page_size=1000)}
        holder = next(r for r in t["replica_task_sessions"].values() if r["replica_point_uid"] == dead["uid"])
        rel = link(api.xml(holder["href"]), "Related", "VmReplicaPoint")
        assert (rel.get("Href"), rel.get("Name")) == (dead["href"], dead["name"])


def test_quirk_parents_only_by_link():
    w = World(seed=6, jobs=6, days=7, quirks=Quirks(parents_only_by_link=True))
    with Simulator(w) as s:
        api = Api(s)
        t = w.truth()
        listed = {r.get("UID") for r in api.query_all("ReplicaJobSession", page_size=1000)}
        hidden = set(t["replica_job_sessions"]) - listed
        assert hidden
        task = next(r for r in t["replica_task_sessions"].values() if r["job_session_uid"] in hidden)
        up = link(api.xml(task["href"]), "Up", "ReplicaJobSessionReference").get("Href")
        ent = api.xml(up, format="Entity")
        assert session_row(ent) == t["replica_job_sessions"][task["job_session_uid"]]


def test_fault_hook_can_answer():
    class Busy(Faults):
        def intercept(self, ctx):
            if ctx.kind == "query" and "busy" not in ctx.extra:
                return 503, {"Content-Type": "text/plain"}, b"maintenance"
            return None

    w = World(seed=2, jobs=1, days=1)
    with Simulator(w, faults=Busy()) as s:
        api = Api(s)
        assert api.get("/query", type="BackupServer").status_code == 503
        assert api.get("/backupServers").status_code == 200


def test_stop_drops_keep_alive_connections():
    s = Simulator(World(seed=2, jobs=1, days=1)).start()
    c = httpx.Client(timeout=2)
    assert c.get(s.url + "/").status_code == 200
    s.stop()
    with pytest.raises(httpx.TransportError):
        c.get(s.url + "/")
