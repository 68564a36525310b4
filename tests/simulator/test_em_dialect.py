"""The simulator speaks EM as em-api.md documents it: the logon session's QueryService link is a menu
(`/querySvc`) and queries run at `/query`; enum values are bare in filters; windows per backup server;
session states beyond the documented ones; v13 backup servers beside older ones."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from simapi import NS, Api, link, links, text, xml_of

from etl.simulator import Quirks, Simulator, World
from etl.simulator.world import EXTRA_STATES, V13

NOW = datetime(2025, 8, 15, 12, 0, tzinfo=UTC)


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def uids(api: Api, type_: str, flt: str) -> set[str]:
    return {r.get("UID") for r in api.query_all(type_, page_size=1000, filter=flt)}


@pytest.fixture(scope="module")
def sim():
    with Simulator(World(seed=11, servers=3, jobs=9, days=3)) as s:
        yield s


@pytest.fixture(scope="module")
def api(sim) -> Api:
    return Api(sim)


# ---------------------------------------------------------------------- logon session, QueryService
def test_logon_session_links_as_em_reference_shows_them(sim, api):
    r = httpx.post(sim.url + "/sessionMngr/?v=latest", auth=("demo", "demo"))
    assert r.status_code == 201
    token = r.headers["X-RestSvcSessionId"]
    assert f"X-RestSvcSessionId={token}" in r.headers["Set-Cookie"]
    body = xml_of(r.content)
    sid = text(body, "SessionId")
    assert (body.tag, body.get("Type")) == (NS + "LogonSession", "LogonSession")
    assert body.get("Href") == f"{sim.url}/logonSessions/{sid}"
    rels = [(x.get("Rel"), x.get("Type")) for x in links(body)]
    assert rels[0] == ("Up", "EnterpriseManager") and rels[-1] == ("Delete", "LogonSession")
    assert link(body, "Down", "QueryService").get("Href") == sim.url + "/querySvc"
    assert link(body, "Delete", "LogonSession").get("Href") == body.get("Href")
    assert (
        link(body, "Down", "ReplicaTaskSessionReferenceList").get("Href") == sim.url + "/replicaTaskSessions"
    )
    assert not [x for x in links(body) if x.get("Href").endswith("/query")]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"type": "ReplicaJobSession"},
        {"type": "ReplicaTaskSession", "format": "Entities", "pageSize": "500", "page": "1"},
        {"type": "BackupServer", "filter": "Name==x", "sortAsc": "Name"},
    ],
)
def test_query_service_link_answers_the_menu_whatever_the_parameters(sim, api, params):
    sid = text(xml_of(api.logon_body), "SessionId")
    r = api.get("/querySvc", **params)
    assert r.status_code == 200
    menu = xml_of(r.content)
    assert (menu.tag, menu.get("Type"), menu.get("Href")) == (
        NS + "QuerySvc",
        "QueryService",
        sim.url + "/querySvc",
    )
    assert menu.find(NS + "Entities") is None and menu.find(NS + "PagingInfo") is None
    up = link(menu, "Up", "LogonSession")
    assert up.get("Href") == f"{sim.url}/logonSessions/{sid}"
    down = {x.get("Type"): x.get("Href") for x in links(menu) if x.get("Rel") == "Down"}
    assert len(down) == 40
    assert down["ReplicaJobSessionList"] == (
        f"{sim.url}/query?type=ReplicaJobSession&format=Entities&sortAsc=name&pageSize=15&page=1"
    )
    preset = api.xml(down["ReplicaTaskSessionList"])  # the menu's own links are queries at /query
    assert preset.tag == NS + "QueryResult" and preset.find(NS + "PagingInfo").get("PageSize") == "15"
    assert len(preset.find(NS + "Entities")[0]) == 15


def test_query_service_needs_a_token_and_queries_run_only_at_query(sim, api):
    assert httpx.get(sim.url + "/querySvc").status_code == 401
    assert api.get("/querySvc/").status_code == 200
    assert xml_of(api.get("/query", type="BackupServer").content).tag == NS + "QueryResult"
    assert api.get("/querySvc", type="BackupServer").content.count(b"<QueryResult") == 0


# ---------------------------------------------------------------------- filter literals
@pytest.mark.parametrize(
    "type_, flt",
    [
        ("ReplicaJobSession", 'State!="Stopped"'),
        ("ReplicaJobSession", 'Result=="Success"'),
        ("ReplicaJobSession", 'JobType=="Replica"'),
        ("ReplicaTaskSession", 'CreationTime>="2025-08-14T00:00:00Z";State=="Completed"'),
        ("VmReplicaPoint", '(Algorithm=="Full",Type==Full)'),
    ],
)
def test_quoted_enum_values_are_400_saying_they_are_written_bare(api, type_, flt):
    r = api.get("/query", type=type_, filter=flt)
    assert r.status_code == 400
    err = xml_of(r.content)
    assert err.tag == NS + "Error" and "bare" in err.get("Message")


def test_bare_enums_and_quoted_strings_dates_urns(api, sim):
    t = sim.truth()
    sessions, tasks = t["replica_job_sessions"], t["replica_task_sessions"]
    unfinished = {u for u, r in sessions.items() if r["state"] != "Stopped"}
    assert unfinished and uids(api, "ReplicaJobSession", "State!=Stopped") == unfinished
    ok = {u for u, r in sessions.items() if r["result"] == "Success"}
    assert uids(api, "ReplicaJobSession", "Result==Success") == ok
    assert uids(api, "ReplicaJobSession", "JobType==Replica") == set(sessions)
    assert uids(api, "ReplicaJobSession", "JobType==Backup") == set()
    js = next(iter(sessions))
    assert uids(api, "ReplicaTaskSession", f'JobSessionUid=="{js}";State==Completed') == {
        u for u, r in tasks.items() if r["job_session_uid"] == js and r["state"] == "Completed"
    }
    name = next(r["job_name"] for r in sessions.values() if " " in r["job_name"])
    assert uids(api, "ReplicaJobSession", f'JobName=="{name}";Result>=Success') == {
        u for u, r in sessions.items() if r["job_name"] == name and r["result"] != "None"
    }


def test_backup_server_windows_in_one_filter(api, sim):
    """em-api.md: `(BackupServerUid==a;CreationTime>=ta),(BackupServerUid==b;CreationTime>=tb)`."""
    t = sim.truth()
    a, b, c = sorted(t["backup_servers"])
    ta, tb = NOW - timedelta(days=1), NOW - timedelta(hours=30)
    flt = f'(BackupServerUid=="{a}";CreationTime>="{iso(ta)}"),(BackupServerUid=="{b}";CreationTime>="{iso(tb)}")'
    for type_, table in (
        ("ReplicaJobSession", "replica_job_sessions"),
        ("ReplicaTaskSession", "replica_task_sessions"),
        ("VmReplicaPoint", "vm_replica_points"),
    ):
        rows = t[table]
        want = {
            u
            for u, r in rows.items()
            if (r["backup_server_uid"] == a and r["creation_time_utc"] >= ta)
            or (r["backup_server_uid"] == b and r["creation_time_utc"] >= tb)
        }
        assert want and uids(api, type_, flt) == want
        assert {r["backup_server_uid"] for u, r in rows.items() if u in want} == {a, b}
        bare = uids(api, type_, f"BackupServerUid=={c}")  # a urn needs no quotes either
        assert bare == {u for u, r in rows.items() if r["backup_server_uid"] == c}


# ---------------------------------------------------------------------- open enums
def test_extra_states_are_served_filtered_and_move_on():
    w = World(seed=1, jobs=12, days=2, quirks=Quirks(extra_states=True))
    with Simulator(w) as s:
        api = Api(s)
        t = s.truth()["replica_job_sessions"]
        extra = {u: r for u, r in t.items() if r["state"] in EXTRA_STATES}
        assert "WaitingRepository" in {r["state"] for r in extra.values()}
        assert all(
            (r["result"], r["end_time_utc"], r["failure_message"]) == ("None", None, None)
            for r in extra.values()
        )
        for row in extra.values():
            el = api.xml(row["href"])
            assert text(el, "State") == row["state"] and text(el, "Result") == "None"
            assert el.find(NS + "EndTimeUTC") is None
        waiting = {u for u, r in t.items() if r["state"] == "WaitingRepository"}
        assert uids(api, "ReplicaJobSession", "State==WaitingRepository") == waiting
        unfinished = {u for u, r in t.items() if r["state"] != "Stopped"}
        assert set(extra) < unfinished
        assert uids(api, "ReplicaJobSession", "State!=Stopped") == unfinished
        assert uids(api, "ReplicaJobSession", "Result==None") == unfinished
        assert api.get("/query", type="ReplicaJobSession", filter="State==Exploded").status_code == 400
        seen = Counter()
        for _ in range(30):
            w.advance(timedelta(minutes=5))
            now = w.truth()["replica_job_sessions"]
            seen.update(now[u]["state"] for u in extra)
            for u in extra:
                assert text(api.xml(now[u]["href"]), "State") == now[u]["state"]
        assert seen["Working"] and seen["Stopped"]
        assert all(now[u]["state"] == "Stopped" and now[u]["end_time_utc"] for u in extra)
    plain = World(seed=1, jobs=12, days=2).truth()["replica_job_sessions"]
    assert not {r["state"] for r in plain.values()} - {"Working", "Stopped"}


# ---------------------------------------------------------------------- server generations
def test_v13_servers_beside_older_ones():
    w = World(seed=5, servers=2, jobs=4, days=2, quirks=Quirks(server_versions=(V13, "12.1.2.172")))
    t = w.truth()
    new, old = (t["backup_servers"][s.uid] for s in w.servers)
    assert (new["version"], new["port"], new["wcf_port"]) == (V13, 443, 9405)
    assert len(new["vbr_certificate_thumbprint"]) == 40
    assert (old["version"], old["port"], old["wcf_port"], old["vbr_certificate_thumbprint"]) == (
        "12.1.2.172",
        9392,
        None,
        None,
    )
    with Simulator(w) as s:
        api = Api(s)
        servers = {el.get("UID"): el for el in api.query_all("BackupServer", "Entities")}
        assert text(servers[new["uid"]], "WcfPort") == "9405" and text(servers[new["uid"]], "Port") == "443"
        assert servers[old["uid"]].find(NS + "WcfPort") is None
        by_vm: dict[str, set] = {}
        for el in api.query_all("ReplicaTaskSession", "Entities", page_size=500):
            srv = link(el, "Up", "BackupServerReference").get("Href").rsplit("/", 1)[-1]
            vm_uid = text(el, "VmUid")
            if new["uid"].endswith(srv):
                assert vm_uid.startswith("urn:VMware:Vm:") and ".vm-" in vm_uid
                assert [c.tag.removeprefix(NS) for c in el][-2:] == ["TotalSize", "VmUid"]
                by_vm.setdefault(el.get("VmDisplayName"), set()).add(vm_uid)
            else:
                assert vm_uid is None
        assert by_vm and all(len(v) == 1 for v in by_vm.values())
        assert len({next(iter(v)) for v in by_vm.values()}) == len(by_vm)
