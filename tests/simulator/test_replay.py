"""The replay server (tests/replay.py) serves recorded EM bodies at the documented URLs over a real
socket and records every request; the client's tests against real bodies stand on it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
from replay import RECORDED_ORIGIN, SAMPLES, Replay

NS = "{http://www.veeam.com/ent/v1.0}"


def xml(r: httpx.Response) -> ET.Element:
    return ET.fromstring(r.content)  # noqa: S314 - recorded bodies


def link(el: ET.Element, rel: str, typ: str) -> str:
    return next(x.get("Href") for x in el.find(NS + "Links") if (x.get("Rel"), x.get("Type")) == (rel, typ))


def test_replay_logon_menu_queries_and_logoff():
    queries = {
        "ReplicaJobSession": "query-replica-job-session-waiting-repository.xml",
        "BackupServer": "backup-server-v13.xml",
        "ReplicaTaskSession": (500, "error-500.xml"),
    }
    with Replay(queries, user="DOMAIN\\svc", password="pw") as em:
        c = httpx.Client(timeout=5)
        root = xml(c.get(em.url + "/"))
        create = link(root, "Create", "LogonSession")
        assert create == em.url + "/sessionMngr/?v=latest"
        assert c.post(create, auth=("DOMAIN\\svc", "wrong")).status_code == 401
        r = c.post(create, auth=("DOMAIN\\svc", "pw"))
        assert r.status_code == 201
        token = r.headers["x-restsvcsessionid"]
        assert f"X-RestSvcSessionId={token}" in r.headers["set-cookie"]
        session = xml(r)
        svc = link(session, "Down", "QueryService")
        assert svc == em.url + "/querySvc"
        h = {"X-RestSvcSessionId": token}
        assert c.get(em.url + "/query", params={"type": "BackupServer"}).status_code == 401

        menu = c.get(svc, params={"type": "ReplicaJobSession", "format": "Entities"}, headers=h)
        assert menu.status_code == 200 and xml(menu).tag == NS + "QuerySvc"
        assert RECORDED_ORIGIN.encode() not in menu.content and em.url.encode() in menu.content

        page = c.get(em.url + "/query?type=replicaJobSession&format=Entities&pageSize=500&page=1", headers=h)
        assert page.status_code == 200 and b"<State>WaitingRepository</State>" in page.content
        recorded = (SAMPLES / "query-replica-job-session-waiting-repository.xml").read_bytes()
        assert page.content == recorded.replace(RECORDED_ORIGIN.encode(), em.origin.encode())
        failed = c.get(em.url + "/query", params={"type": "ReplicaTaskSession"}, headers=h)
        assert failed.status_code == 500 and xml(failed).tag == NS + "Error"
        empty = xml(c.get(em.url + "/query", params={"type": "VmReplicaPoint"}, headers=h))
        assert empty.find(NS + "PagingInfo").get("PagesCount") == "0"
        assert c.get(em.url + "/backupServers/x", headers=h).status_code == 404

        assert c.delete(link(session, "Delete", "LogonSession"), headers=h).status_code == 204
        assert c.get(svc, headers=h).status_code == 401

    methods = [(r.method, r.path) for r in em.requests]
    assert methods[:3] == [("GET", "/api/"), ("POST", "/api/sessionMngr/"), ("POST", "/api/sessionMngr/")]
    assert em.requests[2].query == {"v": "latest"}
    assert [r.query["type"] for r in em.queried()] == [
        "BackupServer",
        "replicaJobSession",
        "ReplicaTaskSession",
        "VmReplicaPoint",
    ]
    assert em.queried("ReplicaJobSession")[0].query["pageSize"] == "500"
    assert ("GET", "/api/querySvc") in methods and (
        "DELETE",
        link(session, "Delete", "LogonSession")[len(em.origin) :],
    ) in methods


def test_replay_routes_and_raw_bodies():
    point = "/api/vmReplicaPoints/81aba862-0000-4269-8dfe-000000000004"
    with Replay(routes={point: b"<VmReplicaPoint/>"}, empty="query-empty-list.xml") as em:
        c = httpx.Client(timeout=5)
        token = c.post(em.url + "/sessionMngr/?v=latest", auth=("any", "thing")).headers["X-RestSvcSessionId"]
        h = {"X-RestSvcSessionId": token}
        assert (
            c.get(em.origin + point, params={"format": "Entity"}, headers=h).content == b"<VmReplicaPoint/>"
        )
        listed = c.get(em.url + "/query", params={"type": "ReplicaTaskSession"}, headers=h)
        assert xml(listed).find(NS + "Entities")[0].tag == NS + "ReplicaTaskSessions"
        assert c.post(em.url + "/sessionMngr/?v=latest").status_code == 401  # no credentials at all
