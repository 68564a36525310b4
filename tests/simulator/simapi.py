"""Plain helpers for the simulator tests: an EM session over a real socket (httpx) and ElementTree
readers. Never etl.parse/etl.client: the simulator and the client stay independent readings."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import quote

import httpx

from etl.simulator import Simulator

NS = "{http://www.veeam.com/ent/v1.0}"


def xml_of(body: bytes) -> ET.Element:
    return ET.fromstring(body)  # noqa: S314 - our own simulator's output or a recorded body


def text(el: ET.Element, name: str) -> str | None:
    child = el.find(NS + name)
    if child is None or not (child.text or "").strip():
        return None
    return child.text


def links(el: ET.Element) -> list[ET.Element]:
    return list(el.find(f"{NS}Links"))


def link(el: ET.Element, rel: str, typ: str) -> ET.Element | None:
    return next((x for x in links(el) if x.get("Rel") == rel and x.get("Type") == typ), None)


class Api:
    """A logged-on EM session against a simulator (as its Portal Administrator unless `user` and
    `password` name another account)."""

    def __init__(self, sim: Simulator, user: str | None = None, password: str | None = None):
        self.sim = sim
        self.c = httpx.Client(timeout=10)
        auth = (user or sim.user, password if user else sim.password)
        r = self.c.post(sim.url + "/sessionMngr/?v=latest", auth=auth)
        assert r.status_code == 201, r.text
        self.token = r.headers["X-RestSvcSessionId"]
        self.logon_body = r.content

    def get(self, url: str, **params) -> httpx.Response:
        if not url.startswith("http"):
            url = self.sim.url + url
        return self.c.get(url, params=params or None, headers={"X-RestSvcSessionId": self.token})

    def xml(self, url: str, **params) -> ET.Element:
        r = self.get(url, **params)
        assert r.status_code == 200, (url, r.status_code, r.text)
        return xml_of(r.content)

    def query_all(
        self, type_: str, fmt: str = "References", page_size: int = 100, **extra
    ) -> list[ET.Element]:
        """Walk the Next links; return every Ref/entity element."""
        params = "&".join(f"{k}={quote(v, safe='')}" for k, v in extra.items())
        url = f"/query?type={type_}&format={fmt}&pageSize={page_size}" + (f"&{params}" if params else "")
        out, pages = [], 0
        while url:
            root = self.xml(url)
            pages += 1
            if fmt == "Entities":
                out.extend(root.find(f"{NS}Entities")[0])
            else:
                out.extend(root.find(f"{NS}Refs") or [])  # an empty page has no <Refs>
            info = root.find(f"{NS}PagingInfo")
            nxt = [ln.get("Href") for ln in info.iter(f"{NS}Link") if ln.get("Rel") == "Next"]
            url = nxt[0] if nxt else None
            assert pages <= int(info.get("PagesCount"))
        assert pages == int(info.get("PagesCount"))
        return out
