"""XML rendering of EM entities, references, collections and query results.

Each object's entity/reference form is rendered once into bytes (without the namespace declaration)
and cached; the world's advance listener drops only the objects whose state changed.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from xml.sax.saxutils import escape

from . import render_backup
from .clock import fmt_ts
from .entities import (
    RESULTS,
    BackupServer,
    EmObject,
    ReplicaJobSession,
    ReplicaTaskSession,
    ReplicationEntity,
    VmReplicaPoint,
)
from .render_backup import Rng
from .world import World

NS = "http://www.veeam.com/ent/v1.0"

REPLICATION = (BackupServer, ReplicaJobSession, ReplicaTaskSession, VmReplicaPoint)  # the rest: render_backup
_ATTR = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
XSD = ' xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
# The QueryService menu (em-samples/querysvc-menu.xml): (link Type, query type, sortAsc), in its order.
MENU = tuple(
    (f"{t}List", q or t, sort)
    for t, q, sort in (
        ("VmRestorePoint", "", "name"),
        ("VAppRestorePoint", "", "name"),
        ("VmReplicaPoint", "", "name"),
        ("Task", "", "TaskUid"),
        ("Job", "", "name"),
        ("RestorePoint", "", "name"),
        ("BackupTaskSession", "", "name"),
        ("ReplicaTaskSession", "", "name"),
        ("RestoreSession", "", "name"),
        ("Repository", "", "name"),
        ("Backup", "", "name"),
        ("Replica", "", "name"),
        ("HierarchyRoot", "", "name"),
        ("BackupJobSession", "", "name"),
        ("ReplicaJobSession", "", "name"),
        ("BackupServer", "", "name"),
        ("ManagedServer", "", "name"),
        ("FailoverPlan", "", "name"),
        ("WanAccelerator", "", "name"),
        ("CloudGateway", "", "name"),
        ("CloudTenant", "", "name"),
        ("PasswordKey", "Passwords", "BackupServerUid"),
        ("Credentials", "", "BackupServerUid"),
        ("CloudReplica", "", "name"),
        ("BackupFile", "", "name"),
        ("VCloudOrganizationConfig", "", "name"),
        ("CloudSubtenant", "", "Name"),
        ("CloudHardwarePlan", "", "Name"),
        ("CloudPublicIpAddress", "", "Name"),
        ("AgentBackupJob", "", "name"),
        ("AgentRestorePoint", "", "name"),
        ("AgentProtectionGroup", "", "name"),
        ("DiscoveredComputer", "", "name"),
        ("CloudFailoverPlan", "", "Name"),
        ("CloudGatewayPool", "", "Name"),
        ("VSphereSelfServiceConfig", "", "Name"),
        ("ExternalRepository", "", "name"),
        ("NasJob", "", "name"),
        ("FileServer", "", "name"),
        ("VAppReplicaPoint", "", "name"),
    )
)
# Top-level collections a logon session links to (Rel="Down"), from the EM reference's LogonSession.
SESSION_LINKS = (
    ("BackupServerReferenceList", "backupServers"),
    ("ManagedServerReferenceList", "managedServers"),
    ("JobReferenceList", "jobs"),
    ("FailoverPlanReferenceList", "failoverPlans"),
    ("HierarchyRootReferenceList", "hierarchyRoots"),
    ("RepositoryReferenceList", "repositories"),
    ("BackupReferenceList", "backups"),
    ("RestorePointReferenceList", "restorePoints"),
    ("VmRestorePointReferenceList", "vmRestorePoints"),
    ("VAppRestorePointReferenceList", "vAppRestorePoints"),
    ("ReplicaReferenceList", "replicas"),
    ("VmReplicaPointReferenceList", "vmReplicaPoints"),
    ("CatalogVmReferenceList", "catalog/vms"),
    ("BackupJobSessionReferenceList", "backupSessions"),
    ("BackupTaskSessionReferenceList", "backupTaskSessions"),
    ("ReplicaJobSessionReferenceList", "replicaSessions"),
    ("ReplicaTaskSessionReferenceList", "replicaTaskSessions"),
    ("RestoreSessionReferenceList", "restoreSessions"),
    ("QueryService", "querySvc"),
)
PLURAL = {
    "BackupServer": "BackupServers",
    "ReplicaJobSession": "ReplicaJobSessions",
    "ReplicaTaskSession": "ReplicaTaskSessions",
    "VmReplicaPoint": "VmReplicaPoints",
    **render_backup.PLURAL,
}


def attrs(pairs: list[tuple[str, str]], rng: random.Random | None = None) -> str:
    if rng is not None:
        pairs = list(pairs)
        rng.shuffle(pairs)
    return "".join(f' {k}="{escape(v, _ATTR)}"' for k, v in pairs)


class Renderer:
    """Renders one world for one origin (`http://host:port`); thread-safe under `world.lock`."""

    def __init__(self, world: World, origin: str):
        self.w, self.q = world, world.quirks
        self.origin = (self.q.public_origin or origin).rstrip("/")
        self.api = self.origin + "/api"
        self.p = "v:" if self.q.prefixed_namespace else ""
        self.nsdecl = f' xmlns:v="{NS}"' if self.q.prefixed_namespace else f' xmlns="{NS}"'
        # what .NET's XmlSerializer writes on a root (em-samples/: QueryResult, Error)
        self.nsfull = XSD + self.nsdecl
        self._ent: dict[str, bytes] = {}
        self._ref: dict[str, bytes] = {}
        self._one: dict[str, bytes] = {}  # single-entity GETs that differ from the query form
        world.add_listener(self.invalidate)

    def invalidate(self, guids: Iterable[str]) -> None:
        """Forget the rendering of these objects (a world listener: their state changed)."""
        for g in guids:
            self._ent.pop(g, None)
            self._ref.pop(g, None)
            self._one.pop(g, None)

    # ------------------------------------------------------------------ helpers
    def _rng(self, guid: str) -> random.Random | None:
        return random.Random(guid) if self.q.shuffle_attributes else None

    def doc(self, body: str | bytes) -> bytes:
        if isinstance(body, str):
            body = body.encode()
        head = b'<?xml version="1.0" encoding="utf-8"?>\n' if self.q.xml_declaration else b""
        return (b"\xef\xbb\xbf" if self.q.bom else b"") + head + body

    def el(self, name: str, value: str | None) -> str:
        if value is None:
            return ""
        if value == "":
            return f"<{self.p}{name} />"
        return f"<{self.p}{name}>{escape(value)}</{self.p}{name}>"

    def link(self, rel: str, typ: str | None, href: str, name: str | None = None, rng: Rng = None) -> str:
        pairs = [("Rel", rel), ("Type", typ), ("Href", href)] if typ else [("Rel", rel), ("Href", href)]
        if name is not None:
            pairs.append(("Name", name))
        return f"<{self.p}Link{attrs(pairs, rng)} />"

    def links(self, items: list[str]) -> str:
        return f"<{self.p}Links>{''.join(items)}</{self.p}Links>"

    def href(self, kind: str, guid: str, entity: bool) -> str:
        return self.w.href(kind, guid, entity, self.origin)

    def _extra(self, guid: str) -> str:
        if self.q.unknown_elements and int(guid[:2], 16) % 3 == 0:
            return f"<{self.p}Extra>x</{self.p}Extra>"
        return ""

    # ------------------------------------------------------------------ per-type pieces
    def _up_links(self, obj: ReplicationEntity, rng: Rng) -> list[str]:
        if obj.kind == "BackupServer":
            return []
        if obj.kind == "ReplicaJobSession":
            job = obj.job
            return [
                self.link(
                    "Up",
                    "BackupServerReference",
                    self.href("BackupServer", job.server.guid, False),
                    job.server.name,
                    rng,
                ),
                self.link("Up", "JobReference", f"{self.api}/jobs/{job.guid}", job.name, rng),
            ]
        if obj.kind == "ReplicaTaskSession":
            js = obj.js
            return [
                self.link(
                    "Up",
                    "BackupServerReference",
                    self.href("BackupServer", js.job.server.guid, False),
                    js.job.server.name,
                    rng,
                ),
                self.link(
                    "Up",
                    "ReplicaJobSessionReference",
                    self.href("ReplicaJobSession", js.guid, False),
                    js.name,
                    rng,
                ),
            ]
        job = obj.task.js.job
        replica = self.w.backup.replica_of[job.guid]
        return [
            self.link(
                "Up",
                "BackupServerReference",
                self.href("BackupServer", job.server.guid, False),
                job.server.name,
                rng,
            ),
            self.link("Up", "ReplicaReference", f"{self.api}/replicas/{replica.guid}", replica.name, rng),
        ]

    def _down_links(self, obj: ReplicationEntity, rng: Rng) -> list[str]:
        """After `Alternate` in an entity, before it in a reference (em-samples/: the v13 server, the
        References page and the job sessions); no `Name`."""
        if obj.kind == "ReplicaJobSession":
            href = f"{self.api}/replicaSessions/{obj.guid}/replicaTaskSessions"
            return [self.link("Down", "ReplicaTaskSessionReferenceList", href, None, rng)]
        if obj.kind == "BackupServer":
            href = f"{self.href('BackupServer', obj.guid, False)}/jobs"
            return [self.link("Down", "JobReferenceList", href, None, rng)]
        return []

    def _root_attrs(self, obj: ReplicationEntity, entity: bool, rng: Rng) -> str:
        kind = obj.kind
        pairs = [
            ("Type", kind if entity else kind + "Reference"),
            ("Href", self.href(kind, obj.guid, entity)),
            ("Name", obj.name),
            ("UID", obj.uid),
        ]
        if entity and obj.kind == "ReplicaTaskSession":
            pairs.append(("VmDisplayName", obj.vm_name))
        elif entity and obj.kind == "VmReplicaPoint":
            pairs.append(("VmDisplayName", obj.task.vm_name))
        return attrs(pairs, rng)

    def _fields(self, obj: ReplicationEntity) -> str:
        w, el = self.w, self.el
        if obj.kind == "BackupServer":
            return (
                el("Description", obj.description)
                + el("Port", str(obj.port))
                + el("Version", obj.version)
                + el("WcfPort", None if obj.wcf_port is None else str(obj.wcf_port))
                + el("VbrCertificateThumbprint", obj.thumbprint)
            )
        if obj.kind == "ReplicaJobSession":
            state, result, progress, end = w.js_state(obj)
            return (
                el("JobUid", f"urn:veeam:Job:{obj.job.guid}")
                + el("JobName", obj.job.name)
                + el("JobType", "Replica")
                + el("CreationTimeUTC", fmt_ts(obj.start, obj.prec))
                + el("EndTimeUTC", None if end is None else fmt_ts(end, obj.prec))
                + el("State", state)
                + el("Result", "None" if result is None else RESULTS[result])
                + el("Progress", str(progress))
                + el("FailureMessage", obj.failure if end is not None else None)
                + el("IsRetry", "true" if obj.is_retry else "false")
            )
        if obj.kind == "ReplicaTaskSession":
            state, result, end = w.task_state(obj)
            return (
                el("JobSessionUid", obj.js.uid)
                + el("CreationTimeUTC", fmt_ts(obj.created, obj.prec))
                + el("EndTimeUTC", None if end is None else fmt_ts(end, obj.prec))
                + el("State", state)
                + el("Result", "None" if result is None else RESULTS[result])
                + el("Reason", obj.reason if end is not None else "")
                + el("TotalSize", str(obj.js.job.vms[obj.vm][2]))
                + el("VmUid", w.vm_uid(obj))
            )
        vm = obj.task.vm_name
        return (
            el("CreationTimeUTC", fmt_ts(obj.created, obj.prec))
            + el("VmName", vm if self.q.vm_name else None)
            + el("Algorithm", obj.algorithm)
            + el("PointType", obj.point_type)
        )

    def entity_piece(self, obj: EmObject) -> bytes:
        """`' attrs><Links>…</Links>fields'` — wrap as `<Name` + piece + `</Name>`."""
        if not isinstance(obj, REPLICATION):
            return render_backup.entity_piece(self, obj)
        b = self._ent.get(obj.guid)
        if b is None:
            rng = self._rng(obj.guid)
            kind = obj.kind
            items = self._up_links(obj, rng)
            items.append(
                self.link("Alternate", kind + "Reference", self.href(kind, obj.guid, False), obj.name, rng)
            )
            items += self._down_links(obj, rng)
            if kind == "BackupServer":
                start = self.href(kind, obj.guid, False) + "?action=collect"
                items.append(self.link("Start", None, start, None, rng))
            if obj.kind == "ReplicaTaskSession":
                p = self.w.related_point(obj)
                if p is not None:
                    items.append(
                        self.link(
                            "Related",
                            "VmReplicaPoint",
                            self.href("VmReplicaPoint", p.guid, True),
                            p.name,
                            rng,
                        )
                    )
            extra = self._extra(obj.guid)
            b = (
                self._root_attrs(obj, True, rng) + ">" + self.links(items) + self._fields(obj) + extra
            ).encode()
            self._ent[obj.guid] = b
        return b

    def ref_piece(self, obj: EmObject) -> bytes:
        if not isinstance(obj, REPLICATION):
            return render_backup.ref_piece(self, obj)
        b = self._ref.get(obj.guid)
        if b is None:
            rng = self._rng(obj.guid)
            kind = obj.kind
            items = self._up_links(obj, rng) + self._down_links(obj, rng)
            items.append(self.link("Alternate", kind, self.href(kind, obj.guid, True), obj.name, rng))
            b = (self._root_attrs(obj, False, rng) + ">" + self.links(items)).encode()
            self._ref[obj.guid] = b
        return b

    # ------------------------------------------------------------------ documents
    def _wrap(self, name: str, piece: bytes, ns: bool) -> bytes:
        tag = (self.p + name).encode()
        return b"<" + tag + (self.nsfull.encode() if ns else b"") + piece + b"</" + tag + b">"

    def entity_doc(self, obj: EmObject) -> bytes:
        if not isinstance(obj, REPLICATION):
            piece = render_backup.entity_piece(self, obj, single=True)
        else:
            piece = self.entity_piece(obj)
        return self.doc(self._wrap(render_backup.TAGS.get(obj.kind, obj.kind), piece, True))

    def ref_doc(self, obj: EmObject) -> bytes:
        return self.doc(self._wrap("EntityRef", self.ref_piece(obj), True))

    def _entities(self, kind: str, objs: Iterable[EmObject]) -> bytes:
        tag = (self.p + render_backup.TAGS.get(kind, kind)).encode()
        op, cl = b"<" + tag, b"</" + tag + b">"
        ep = self.entity_piece
        return b"".join([op + ep(o) + cl for o in objs])

    def _refs(self, objs: Iterable[EmObject]) -> bytes:
        op, cl = f"<{self.p}Ref".encode(), f"</{self.p}Ref>".encode()
        rp = self.ref_piece
        return b"".join([op + rp(o) + cl for o in objs])

    def collection_doc(self, kind: str, objs: Iterable[EmObject], entity: bool) -> bytes:
        if entity:
            return self.doc(self._wrap(PLURAL[kind], b">" + self._entities(kind, objs), True))
        return self.doc(self._wrap("EntityReferences", b">" + self._refs(objs), True))

    def query_doc(
        self,
        kind: str,
        objs: Sequence[EmObject],
        entity: bool,
        page: int,
        size: int,
        count: int,
        link_hrefs: list[tuple[str, str]],
    ) -> bytes:
        p = self.p
        rng = random.Random(f"{page}:{size}") if self.q.shuffle_attributes else None
        info = f"<{p}PagingInfo{attrs([('PageNum', str(page)), ('PageSize', str(size)), ('PagesCount', str(count))], rng)}"
        # EM's serializer leaves a null list out: an empty References page has no <Refs> at all (a v12
        # JSON recording shows "Refs": null; em-api.md, "Empty results")
        if count == 0:  # em-samples/query-empty-entities.xml
            empty = f">{f'<{p}Entities />' if entity else ''}{info} />"
            return self.doc(self._wrap("QueryResult", empty.encode(), True))
        if entity:
            body = (
                f"><{p}Entities><{p}{PLURAL[kind]}>".encode()
                + self._entities(kind, objs)
                + f"</{p}{PLURAL[kind]}></{p}Entities>".encode()
            )
        elif objs:
            body = f"><{p}Refs>".encode() + self._refs(objs) + f"</{p}Refs>".encode()
        else:
            body = b">"
        items = [f"<{p}Link{attrs([('Rel', rel), ('Href', href)], rng)} />" for rel, href in link_hrefs]
        info += ">" + self.links(items) + f"</{p}PagingInfo>"
        return self.doc(self._wrap("QueryResult", body + info.encode(), True))

    def error_doc(self, status: int, message: str) -> bytes:
        """em-samples/error-500.xml: a 500 also carries `FirstChanceExceptionMessage`."""
        p = self.p
        a = attrs([("Message", message), ("StatusCode", str(status))])
        if status != 500:
            return self.doc(f"<{p}Error{a}{self.nsdecl}{XSD} />")
        inner = self.el("FirstChanceExceptionMessage", message)
        return self.doc(f"<{p}Error{a}{self.nsdecl}{XSD}>{inner}</{p}Error>")

    def root_doc(self) -> bytes:
        p = self.p
        link = self.link("Create", "LogonSession", f"{self.api}/sessionMngr/?v=latest")
        vers = "".join(f'<{p}SupportedVersion Name="v1_{i}" />' for i in (5, 6, 7))
        return self.doc(
            f"<{p}EnterpriseManager{self.nsfull}>{self.links([link])}"
            f"<{p}SupportedVersions>{vers}</{p}SupportedVersions></{p}EnterpriseManager>"
        )

    def logon_doc(self, session_id: str, user: str) -> bytes:
        """The LogonSession as the EM reference shows it: `Up` to the API root, `Down` to the top-level
        collections and to the QueryService (`/querySvc`, a menu: queries run at `/query`), `Delete`."""
        p, api = self.p, self.api
        me = f"{api}/logonSessions/{session_id}"
        items = [self.link("Up", "EnterpriseManager", f"{api}/")]
        items += [self.link("Down", typ, f"{api}/{path}") for typ, path in SESSION_LINKS]
        items.append(self.link("Delete", "LogonSession", me))
        return self.doc(
            f"<{p}LogonSession{self.nsfull}{attrs([('Type', 'LogonSession'), ('Href', me)])}>"
            f"{self.links(items)}{self.el('UserName', user)}{self.el('SessionId', session_id)}"
            f"</{p}LogonSession>"
        )

    def menu_doc(self, session_id: str | None) -> bytes:
        """`GET /querySvc` (any parameters): em-samples/querysvc-menu.xml, links to preset queries."""
        p, api = self.p, self.api
        items = []
        if session_id:
            items.append(self.link("Up", "LogonSession", f"{api}/logonSessions/{session_id}"))
        for typ, qtype, sort in MENU:
            href = f"{api}/query?type={qtype}&format=Entities&sortAsc={sort}&pageSize=15&page=1"
            items.append(self.link("Down", typ, href))
        a = attrs([("Type", "QueryService"), ("Href", f"{api}/querySvc")])
        return self.doc(f"<{p}QuerySvc{self.nsdecl}{a}>{self.links(items)}</{p}QuerySvc>")
