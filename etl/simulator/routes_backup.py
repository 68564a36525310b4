"""GETs of the backup-side resources at their documented URLs (em-backup-side.md, "URLs").

`serve(sim, ctx)` answers a path it owns (under the world's lock) or returns None. What EM answers
404 for answers 404 here: the `ImmediateBackupCopyWorker` "jobs", the per-computer agent jobs, and
restore points, VM and agent restore points and backup files that retention removed. Agent jobs and
agent restore points live under /agents, file-share jobs under /nas.
"""

from __future__ import annotations

from .clock import T

SEGMENTS = {
    "jobs": "Job",
    "backupsessions": "BackupJobSession",
    "backuptasksessions": "BackupTaskSession",
    "repositories": "Repository",
    "backups": "Backup",
    "restorepoints": "RestorePoint",
    "vmrestorepoints": "VmRestorePoint",
    "backupfiles": "BackupFile",
    "replicas": "Replica",
}
# under /api/agents and /api/nas
AGENTS = {"jobs": "AgentBackupJob", "agentrestorepoints": "AgentRestorePoint"}
NAS = {"jobs": "NasJob"}
THIRTY_DAYS = 30 * 86400 * T


def _fmt(ctx) -> bool:
    return ctx.query.get("format", "").lower() in ("entity", "entities")


def serve(sim, ctx):
    """The response for a backup-side path, or None when the path is not one of ours."""
    segs = [s.lower() for s in ctx.segments[1:]]  # after "api"
    if not segs:
        return None
    if segs[0] in ("agents", "nas"):
        kinds = AGENTS if segs[0] == "agents" else NAS
        if len(segs) < 2 or segs[1] not in kinds:
            return None
        kind, rest, raw = kinds[segs[1]], segs[2:], ctx.segments[3:]
    elif segs[0] in SEGMENTS:
        kind, rest, raw = SEGMENTS[segs[0]], segs[1:], ctx.segments[2:]
    else:
        return None
    w, r = sim.world, sim.renderer
    b = w.backup
    if not rest:
        return sim._ok(r.collection_doc(kind, _collection(w, kind), _fmt(ctx)))
    obj = b.index[kind].get(rest[0])
    if obj is None:
        return sim.error(404, f"{kind} {raw[0]} was not found")
    if len(rest) == 1:
        if ctx.query.get("format", "").lower() == "entity":
            return sim._ok(r.entity_doc(obj))
        return sim._ok(r.ref_doc(obj))
    if len(rest) != 2:
        return sim.error(404, f"No resource at {ctx.path}")
    children = _children(w, obj, rest[1])
    if children is None:
        return sim.error(404, f"No resource at {ctx.path}")
    ckind, objs = children
    return sim._ok(r.collection_doc(ckind, objs, _fmt(ctx) or rest[1] == "childbackups"))


def _collection(w, kind: str) -> list:
    b = w.backup
    if kind == "BackupJobSession":  # the plain session collections hold the last 30 days only
        since = w.now_ticks - THIRTY_DAYS
        return [o for o in b.sessions if o.start >= since]
    if kind == "BackupTaskSession":
        since = w.now_ticks - THIRTY_DAYS
        return [o for o in b.tasks if o.created >= since]
    from .query_backup import source

    return list(source(kind, w))


def _children(w, obj, what: str):
    """(kind, objects) of a documented child collection, or None."""
    b = w.backup
    kind = obj.kind
    if kind in ("Job", "AgentBackupJob", "NasJob") and what == "backupsessions":
        if kind == "Job" and obj.repl is not None:
            return "ReplicaJobSession", [js for js in w.queryable_job_sessions() if js.job is obj.repl]
        return "BackupJobSession", [s for s in b.sessions if s.job is obj and s.parent is None]
    if kind == "BackupJobSession":
        if what == "tasksessions":
            return "BackupTaskSession", [t for t in obj.tasks if t.guid in b.index["BackupTaskSession"]]
        if what == "agentmanagementsessions" and obj.children:
            return "BackupJobSession", [c for c in obj.children if c.guid in b.index["BackupJobSession"]]
        return None
    if kind == "Repository":
        if what == "backups":
            return "Backup", [x for x in b.backups if x.repo is obj]
        if what == "replicas":
            return "Replica", [x for x in b.replicas if x.repo is obj]
        return None
    if kind == "Backup":
        if what == "restorepoints" and obj.btype != "ParentBackup":
            return "RestorePoint", [rp for rp in b.rps if rp.backup is obj]
        if what == "backupfiles" and obj.btype != "ParentBackup":
            return "BackupFile", [f for f in b.files if f.backup is obj]
        if what == "childbackups" and obj.btype == "ParentBackup":
            return "Backup", list(obj.children)
        return None
    vi, fi = b.index["VmRestorePoint"], b.index["BackupFile"]
    if kind == "RestorePoint":
        if what == "vmrestorepoints":
            return "VmRestorePoint", [v for v in obj.vrps if v.guid in vi]
        if what == "agentrestorepoints":
            ai = b.index["AgentRestorePoint"]
            return "AgentRestorePoint", [a for a in obj.arps if a.guid in ai]
        if what == "backupfiles":
            return "BackupFile", [f for f in obj.files if f.guid in fi]
        return None
    if kind == "BackupFile":
        if what == "restorepoints":
            return "RestorePoint", [obj.rp]
        if what == "vmrestorepoints":
            return "VmRestorePoint", [v for v in obj.vrps if v.guid in vi]
        return None
    if kind == "Replica" and what == "vmreplicapoints":
        return "VmReplicaPoint", [p for p in w.points if p.task.js.job is obj.job.repl]
    return None
