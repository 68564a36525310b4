"""Every resource the simulated EM answers, declared once in `ROUTES`: method, path, request kind,
who may ask (`Access`) and the handler; `match()` picks a request's route. What EM answers 404 for
answers 404: unknown paths, copy workers' and per-computer "jobs", what retention removed.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .clock import T
from .entities import (
    AgentBackupJob,
    AgentRestorePoint,
    Backup,
    BackupFile,
    BackupJobSession,
    BackupServer,
    BackupTaskSession,
    EmObject,
    Job,
    NasJob,
    Replica,
    ReplicaJobSession,
    ReplicaTaskSession,
    Repository,
    RestorePoint,
    VmReplicaPoint,
    VmRestorePoint,
)
from .query_backup import source

if TYPE_CHECKING:
    from .server import RequestContext, Response, Simulator
    from .world import World

THIRTY_DAYS = 30 * 86400 * T
XML = "application/xml; charset=utf-8"
OUTAGE_MODES = ("503", "refuse")


class Access(Enum):
    """Who may make a request, checked in this order: the client's address, a live logon token, the
    account's role for the resource's path or the query's type."""

    PUBLIC = "public"  # anyone: the API root, logon, paths EM does not serve
    LOOPBACK = "loopback"  # the simulator's own /admin endpoints: loopback clients only (else 403)
    LOGON = "logon"  # a live logon token (else 401)
    PATH = "path"  # a token, and a role that may read the path (else 403)
    TYPE = "type"  # a token, and a role that may query the `type` (else 403)


Handler = Callable[["Simulator", "RequestContext", Any], "Response"]


@dataclass(frozen=True, slots=True)
class Route:
    """`path`: lower-case segments; `{id}` one object of `type` (a 404 names it when EM lists none),
    `*` any one segment, `**` any rest (also none). `entity`: matches only with (True) or without
    (False) `format=Entity`. `method` None: any method."""

    kind: str
    method: str | None
    path: tuple[str, ...]
    handler: Handler
    access: Access = Access.PATH
    type: str | None = None
    entity: bool | None = None


E = TypeVar("E", bound=EmObject)
Listing = tuple[str, Sequence[EmObject]]  # (EM type, objects) of a collection


@dataclass(frozen=True)
class Resource(Generic[E]):
    """A top-level collection of EM objects: where it lives, what a GET of it lists, and the child
    collections of each object (segment -> (EM type, objects), or None where EM answers 404)."""

    path: tuple[str, ...]
    type: str
    listed: Callable[[World], Sequence[EmObject]]
    children: dict[str, Callable[[World, E], Listing | None]] = field(default_factory=dict)


# ---------------------------------------------------------------------- answers
def ok(body: bytes, status: int = 200) -> Response:
    return status, {"Content-Type": XML}, body


def entity_format(ctx: RequestContext) -> bool:
    """Whether a collection is asked for as entities (`format=Entity` or `Entities`)."""
    return ctx.query.get("format", "").lower() in ("entity", "entities")


def not_found(sim: Simulator, ctx: RequestContext, obj: object = None) -> Response:
    return sim.error(404, f"No resource at {ctx.path}")


def method_not_allowed(sim: Simulator, ctx: RequestContext, obj: object = None) -> Response:
    return sim.error(405, f"Method {ctx.method} not allowed on {ctx.path}")


def refuse(message: str) -> Handler:
    """A 405 with EM's message for that resource."""
    return lambda sim, ctx, obj: sim.error(405, message)


def root(sim: Simulator, ctx: RequestContext, obj: object) -> Response:
    return ok(sim.render.root_doc())


def logon(sim: Simulator, ctx: RequestContext, obj: object) -> Response:
    """POST /sessionMngr/ with Basic credentials: a logon session and its token (201)."""
    auth = ctx.handler.headers.get("Authorization") or ""
    user = password = None
    if auth[:6].lower() == "basic ":
        try:
            user, _, password = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            user = None
    account = sim.account_for(user, password)
    if account is None or user is None:
        return sim.error(
            401,
            "Authentication failed: invalid user name or password",
            {"WWW-Authenticate": "Basic Realm=RestSvc"},
        )
    session_id = str(uuid.uuid4())
    token = base64.b64encode(secrets.token_bytes(24)).decode()
    sim.open_session(token, session_id, account)
    headers = {
        "Content-Type": XML,
        "x-restsvcsessionid": token,
        "Set-Cookie": f"X-RestSvcSessionId={token}; path=/; HttpOnly",
    }
    return 201, headers, sim.render.logon_doc(session_id, user)


def logoff(sim: Simulator, ctx: RequestContext, obj: object) -> Response:
    """DELETE /logonSessions/{id}: every token of that logon session dies (204)."""
    sid = ctx.segments[2].lower() if len(ctx.segments) > 2 else ""
    if not sim.close_session(sid):
        return sim.error(404, f"Logon session {sid} was not found")
    return 204, {}, b""


def query_menu(sim: Simulator, ctx: RequestContext, obj: object) -> Response:
    return ok(sim.render.menu_doc(sim.session_id(ctx.token)))


def query(sim: Simulator, ctx: RequestContext, obj: object) -> Response:
    """GET /query: one page of a query (query.QueryEngine), after EM's clock moved when it collects
    while a client pages (`quirks.collecting_minutes`)."""
    sim.world.collect_while_paging()
    qk, objs, entity, page, size, count, links = sim.queries.run(ctx.query, sim.render.api)
    return ok(sim.render.query_doc(qk, objs, entity, page, size, count, links))


def admin_advance(sim: Simulator, ctx: RequestContext, obj: object) -> Response:
    """POST /admin/advance?hours=H&minutes=M: the world's clock moves forward."""
    try:
        hours = float(ctx.query.get("hours") or 0) + float(ctx.query.get("minutes") or 0) / 60
    except ValueError:
        return sim.error(400, "hours/minutes must be numbers")
    if hours < 0:
        return sim.error(400, "Time only moves forward")
    sim.world.advance(timedelta(hours=hours))
    return 204, {}, b""


def admin_outage(sim: Simulator, ctx: RequestContext, obj: object) -> Response:
    """POST /admin/outage?mode=503|refuse&seconds=S: EM's service restarts (`Simulator.outage`)."""
    mode = ctx.query.get("mode") or "503"
    try:
        seconds = float(ctx.query.get("seconds") or 60)
    except ValueError:
        return sim.error(400, "seconds must be a number")
    if mode not in OUTAGE_MODES or seconds < 0:
        return sim.error(400, f"mode must be one of {OUTAGE_MODES}, seconds >= 0")
    sim.outage(seconds, mode, spare=ctx.handler.connection)  # in force before the answer
    ctx.handler.close_connection = True
    return 204, {"Connection": "close"}, b""


def admin_truth(sim: Simulator, ctx: RequestContext, obj: object) -> Response:
    """GET /admin/truth: `world.truth()` with the hrefs this simulator serves, as JSON."""
    body = json.dumps(sim.truth(), default=_json_default, indent=1).encode()
    return 200, {"Content-Type": "application/json"}, body


def admin_unknown(sim: Simulator, ctx: RequestContext, obj: object) -> Response:
    return sim.error(404, f"No admin action {ctx.path}")


def _json_default(o: object) -> str:
    if isinstance(o, datetime):
        return o.isoformat()
    raise TypeError(type(o).__name__)


# ---------------------------------------------------------------------- collections
def collection(res: Resource[Any]) -> Handler:
    def handler(sim: Simulator, ctx: RequestContext, obj: object) -> Response:
        return ok(sim.render.collection_doc(res.type, res.listed(sim.world), entity_format(ctx)))

    return handler


def entity(sim: Simulator, ctx: RequestContext, obj: EmObject) -> Response:
    return ok(sim.render.entity_doc(obj))


def reference(sim: Simulator, ctx: RequestContext, obj: EmObject) -> Response:
    return ok(sim.render.ref_doc(obj))


def children(name: str, list_children: Callable[[World, Any], Listing | None]) -> Handler:
    """A child collection of an object; `childBackups` is answered as entities however asked."""

    def handler(sim: Simulator, ctx: RequestContext, obj: EmObject) -> Response:
        found = list_children(sim.world, obj)
        if found is None:
            return not_found(sim, ctx)
        kind, objs = found
        return ok(sim.render.collection_doc(kind, objs, entity_format(ctx) or name == "childbackups"))

    return handler


def _last_30_days_of_sessions(w: World) -> list[ReplicaJobSession]:
    since = w.now_ticks - THIRTY_DAYS
    return [o for o in w.queryable_job_sessions() if o.start >= since]


def _last_30_days_of_tasks(w: World) -> list[ReplicaTaskSession]:
    since = w.now_ticks - THIRTY_DAYS
    return [o for o in w.tasks if o.created >= since]


def _last_30_days_of_points(w: World) -> list[VmReplicaPoint]:
    since = w.now_ticks - THIRTY_DAYS
    return [o for o in w.points if o.created >= since]


def _last_30_days_of_backup_sessions(w: World) -> list[BackupJobSession]:
    since = w.now_ticks - THIRTY_DAYS
    return [o for o in w.backup.sessions if o.start >= since]


def _last_30_days_of_backup_tasks(w: World) -> list[BackupTaskSession]:
    since = w.now_ticks - THIRTY_DAYS
    return [o for o in w.backup.tasks if o.created >= since]


def _listed(kind: str) -> Callable[[World], Sequence[EmObject]]:
    """Everything EM lists of a backup-side type (what its query ranges over)."""
    return lambda w: list(source(kind, w))


def _tasks_of_replica_session(w: World, js: ReplicaJobSession) -> Listing:
    return "ReplicaTaskSession", [t for t in js.tasks if t.guid in w.index["ReplicaTaskSession"]]


def _sessions_of_job(w: World, job: Job | AgentBackupJob | NasJob) -> Listing:
    if job.kind == "Job" and job.repl is not None:
        return "ReplicaJobSession", [js for js in w.queryable_job_sessions() if js.job is job.repl]
    return "BackupJobSession", [s for s in w.backup.sessions if s.job is job and s.parent is None]


def _tasks_of_session(w: World, js: BackupJobSession) -> Listing:
    return "BackupTaskSession", [t for t in js.tasks if t.guid in w.backup.index["BackupTaskSession"]]


def _computer_sessions(w: World, js: BackupJobSession) -> Listing | None:
    if not js.children:
        return None
    return "BackupJobSession", [c for c in js.children if c.guid in w.backup.index["BackupJobSession"]]


def _chain_of(what: str) -> Callable[[World, Backup], Listing | None]:
    """Restore points or backup files of a backup that holds a chain (not a ParentBackup)."""

    def listing(w: World, b: Backup) -> Listing | None:
        if b.btype == "ParentBackup":
            return None
        if what == "RestorePoint":
            return what, [rp for rp in w.backup.rps if rp.backup is b]
        return what, [f for f in w.backup.files if f.backup is b]

    return listing


def _child_backups(w: World, b: Backup) -> Listing | None:
    return ("Backup", list(b.children)) if b.btype == "ParentBackup" else None


def _listed_of(kind: str, objs: Sequence[EmObject], w: World) -> Listing:
    """`objs` that EM still lists (retention removes points and files)."""
    index = w.backup.index[kind]
    return kind, [o for o in objs if o.guid in index]


RESOURCES: tuple[Resource[Any], ...] = (
    # the replication side
    Resource[BackupServer](("backupservers",), "BackupServer", lambda w: w.visible_servers()),
    Resource[ReplicaJobSession](
        ("replicasessions",),
        "ReplicaJobSession",
        _last_30_days_of_sessions,
        {"replicatasksessions": _tasks_of_replica_session},
    ),
    Resource[ReplicaTaskSession](("replicatasksessions",), "ReplicaTaskSession", _last_30_days_of_tasks),
    # Veeam's own misspelling, in every task session's Href
    Resource[ReplicaTaskSession](("repicatasksessions",), "ReplicaTaskSession", _last_30_days_of_tasks),
    Resource[VmReplicaPoint](("vmreplicapoints",), "VmReplicaPoint", _last_30_days_of_points),
    # the backup side
    Resource[Job](("jobs",), "Job", _listed("Job"), {"backupsessions": _sessions_of_job}),
    Resource[AgentBackupJob](
        ("agents", "jobs"), "AgentBackupJob", _listed("AgentBackupJob"), {"backupsessions": _sessions_of_job}
    ),
    Resource[NasJob](("nas", "jobs"), "NasJob", _listed("NasJob"), {"backupsessions": _sessions_of_job}),
    Resource[BackupJobSession](
        ("backupsessions",),
        "BackupJobSession",
        _last_30_days_of_backup_sessions,
        {"tasksessions": _tasks_of_session, "agentmanagementsessions": _computer_sessions},
    ),
    Resource[BackupTaskSession](("backuptasksessions",), "BackupTaskSession", _last_30_days_of_backup_tasks),
    Resource[Repository](
        ("repositories",),
        "Repository",
        _listed("Repository"),
        {
            "backups": lambda w, r: ("Backup", [x for x in w.backup.backups if x.repo is r]),
            "replicas": lambda w, r: ("Replica", [x for x in w.backup.replicas if x.repo is r]),
        },
    ),
    Resource[Backup](
        ("backups",),
        "Backup",
        _listed("Backup"),
        {
            "restorepoints": _chain_of("RestorePoint"),
            "backupfiles": _chain_of("BackupFile"),
            "childbackups": _child_backups,
        },
    ),
    Resource[RestorePoint](
        ("restorepoints",),
        "RestorePoint",
        _listed("RestorePoint"),
        {
            "vmrestorepoints": lambda w, rp: _listed_of("VmRestorePoint", rp.vrps, w),
            "agentrestorepoints": lambda w, rp: _listed_of("AgentRestorePoint", rp.arps, w),
            "backupfiles": lambda w, rp: _listed_of("BackupFile", rp.files, w),
        },
    ),
    Resource[VmRestorePoint](("vmrestorepoints",), "VmRestorePoint", _listed("VmRestorePoint")),
    Resource[AgentRestorePoint](
        ("agents", "agentrestorepoints"), "AgentRestorePoint", _listed("AgentRestorePoint")
    ),
    Resource[BackupFile](
        ("backupfiles",),
        "BackupFile",
        _listed("BackupFile"),
        {
            "restorepoints": lambda w, f: ("RestorePoint", [f.rp]),
            "vmrestorepoints": lambda w, f: _listed_of("VmRestorePoint", f.vrps, w),
        },
    ),
    Resource[Replica](
        ("replicas",),
        "Replica",
        _listed("Replica"),
        {
            "vmreplicapoints": lambda w, r: (
                "VmReplicaPoint",
                [p for p in w.points if p.task.js.job is r.job.repl],
            )
        },
    ),
)


def _routes_of(res: Resource[Any]) -> list[Route]:
    """GET of the collection, of an object (entity or reference) and of its child collections; any
    other path below an object answers 404 once the object is found."""
    base, typ = ("api", *res.path), res.type
    routes = [
        Route("collection", "GET", base, collection(res)),
        Route("entity", "GET", (*base, "{id}"), entity, type=typ, entity=True),
        Route("reference", "GET", (*base, "{id}"), reference, type=typ, entity=False),
    ]
    routes += [
        Route("children", "GET", (*base, "{id}", name), children(name, fn), type=typ)
        for name, fn in res.children.items()
    ]
    routes.append(Route("children", "GET", (*base, "{id}", "**"), not_found, type=typ))
    return routes


ROUTES: tuple[Route, ...] = (
    Route("root", "GET", ("api",), root, Access.PUBLIC),
    Route("root", None, ("api",), refuse("Method not allowed"), Access.PUBLIC),
    Route("logon", "POST", ("api", "sessionmngr", "**"), logon, Access.PUBLIC),
    Route(
        "logon",
        None,
        ("api", "sessionmngr", "**"),
        refuse("Use POST to create a logon session"),
        Access.PUBLIC,
    ),
    Route("logoff", "DELETE", ("api", "logonsessions", "**"), logoff, Access.LOGON),
    Route("querysvc", "GET", ("api", "querysvc", "**"), query_menu, Access.LOGON),
    Route("query", "GET", ("api", "query", "**"), query, Access.TYPE),
    *(route for res in RESOURCES for route in _routes_of(res)),
    Route("admin", "POST", ("admin", "advance", "**"), admin_advance, Access.LOOPBACK),
    Route("admin", "POST", ("admin", "outage", "**"), admin_outage, Access.LOOPBACK),
    Route("admin", "GET", ("admin", "truth", "**"), admin_truth, Access.LOOPBACK),
    Route("admin", None, ("admin", "**"), admin_unknown, Access.LOOPBACK),
    # what no route above serves: under /api after the token (405 for other methods than GET, the
    # role's 403 first), elsewhere at once
    Route("other", "GET", ("api", "**"), not_found),
    Route("other", None, ("api", "**"), method_not_allowed, Access.LOGON),
    Route("other", None, ("**",), not_found, Access.PUBLIC),
)


def _matches(pattern: tuple[str, ...], segs: list[str]) -> bool:
    for i, part in enumerate(pattern):
        if part == "**":
            return True
        if i >= len(segs) or (part != segs[i] and part not in ("{id}", "*")):
            return False
    return len(segs) == len(pattern)


def match(method: str, segments: list[str], query: dict[str, str]) -> Route:
    """The route of a request: the first in ROUTES whose method, path and format match."""
    segs = [s.lower() for s in segments]
    wants_entity = query.get("format", "").lower() == "entity"
    for route in ROUTES:
        if (
            (route.method is None or route.method == method)
            and (route.entity is None or route.entity == wants_entity)
            and _matches(route.path, segs)
        ):
            return route
    raise AssertionError("the last route matches every request")
