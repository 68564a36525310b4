"""The backup side of the simulated estate (em-backup-side.md): its inventory (servers' answering
profiles, repositories, jobs, backups, replicas), what EM lists of it at now, and how that changes
with time (collection, retention, history retention, imports). The runs are made in backup_runs.py.
"""

from __future__ import annotations

import heapq
import random
from typing import TYPE_CHECKING

from .backup_runs import (
    TIER_MID,
    TIER_NEW,
    TIER_OLD,
    Made,
    Runs,
    new_backup_file,
    new_restore_point,
    new_vm_restore_point,
    rr,
)
from .clock import T, trunc
from .entities import (
    FAILED,
    SUCCESS,
    AgentBackupJob,
    AgentRestorePoint,
    AnyJob,
    Backup,
    BackupEntity,
    BackupFile,
    BackupJobSession,
    BackupServer,
    BackupTaskSession,
    Job,
    NasJob,
    Profile,
    Replica,
    ReplicationJob,
    Repository,
    RestorePoint,
    Vm,
    VmRestorePoint,
)
from .world import new_guid

if TYPE_CHECKING:
    from .world import World

COPY_PERIOD = 2 * 86400 * T  # a backup-copy interval: one worker session stays open this long
SESSION_STATES = (
    "Starting",
    "Working",
    "Stopping",
    "Pausing",
    "Resuming",
    "Stopped",
    # VBR session states EM's docs do not list; EM passes them through (em-api.md, open sets)
    "Idle",
    "Pending",
    "WaitingTape",
    "WaitingRepository",
    "WaitingSlot",
    "Postprocessing",
    "ActionRequired",
)
COPY_OPEN_STATES = ("Working", "Idle", "Working", "WaitingRepository")  # per copy job, while open
# (segment under /api, urn type) of every backup-side kind; `AgentBackupJob` lives under /agents/jobs,
# `NasJob` under /nas/jobs, `AgentRestorePoint` under /agents/agentRestorePoints
SEGMENT = {
    "Job": "jobs",
    "AgentBackupJob": "agents/jobs",
    "NasJob": "nas/jobs",
    "BackupJobSession": "backupSessions",
    "BackupTaskSession": "backupTaskSessions",
    "Repository": "repositories",
    "Backup": "backups",
    "RestorePoint": "restorePoints",
    "VmRestorePoint": "vmRestorePoints",
    "AgentRestorePoint": "agents/agentRestorePoints",
    "BackupFile": "backupFiles",
    "Replica": "replicas",
}
KINDS = tuple(SEGMENT)
JOB_PREFIXES = ("Fileserver", "SQL", "Exchange", "Web Farm", "Domain Controllers", "R&D Lab", "ERP", "Citrix")
VM_PREFIXES = ("app", "db", "web", "dc", "fs", "exch", "ctx", "erp", "mon", "vm")
AGENT_PREFIXES = ("ws", "laptop", "srv", "sql")
AGENT_JOB_NAMES = ("Servers", "Laptops", "SQL", "Linux Hosts")
NAS_JOB_NAMES = ("Shared Files", "Home Folders", "Projects Share")
NAS_SHARES = (
    "\\\\fs{n:02d}.corp.lab.local\\share",
    "\\\\nas{n:02d}.corp.lab.local\\home",
    "/exports/projects{n}",
)
SIZES_GIB = (20, 40, 60, 60, 80, 100, 127, 200, 250, 500, 1024, 2048)
REPOS = (
    ("Default Backup Repository", "WindowsLocal", "C:\\Backup\\{job}\\{file}"),
    ("Linux Hardened Repository", "LinuxLocal", "/mnt/backup/{job}/{file}"),
    ("Offsite Copies", "CifsShare", "\\\\nas01.lab.local\\VeeamCopies\\{job}\\{file}"),
)
TZ_HOURS = (2, 1, -5, 0, 9, -8, 3)


def server_tier(version: str) -> int:
    """TIER_NEW from 12.1 on, TIER_MID for 11.x-12.0, TIER_OLD before 11."""
    parts = [int(p) for p in version.split(".")[:2] if p.isdigit()] + [0, 0]
    if (parts[0], parts[1]) >= (12, 1):
        return TIER_NEW
    return TIER_MID if parts[0] >= 11 else TIER_OLD


def href(w: World, kind: str, guid: str, entity: bool, origin: str | None = None) -> str:
    """The Href EM gives a backup-side object (entity form with `?format=Entity`)."""
    base = (w.quirks.public_origin or origin or w.origin).rstrip("/")
    return f"{base}/api/{SEGMENT[kind]}/{guid}" + ("?format=Entity" if entity else "")


def server_of(o: BackupEntity) -> BackupServer:
    """The backup server an object belongs to."""
    if o.kind == "BackupTaskSession":
        return o.js.server
    if o.kind == "VmRestorePoint" or o.kind == "AgentRestorePoint":
        return o.rp.backup.server
    if o.kind == "RestorePoint" or o.kind == "BackupFile":
        return o.backup.server
    return o.server


class BackupSide:
    """The backup half of a `World`; built by it and advanced with it under `world.lock`.

    How a backup server answers depends on its version (`Profile`): servers before 11 send no
    `VmUid`, no `Related` restore-point link, mistyped list links and no VmRestorePoint ->
    BackupFile link; servers before 12.1 send no `Related` link either. Retention (`retention_days`)
    removes restore points, their VM and agent restore points and backup files, and VM replica
    points, once they are older than the retention; links to them stay (EM does not rewrite history)
    and answer 404. One agent computer of the first agent job went offline two days before the
    initial now: its tasks fail since, so its newest agent restore point is older than a day."""

    def __init__(
        self,
        w: World,
        backup_jobs: int,
        agent_jobs: int,
        copy_jobs: int,
        agent_computers: int,
        retention_days: float | None,
        vms_per_job: int,
        nas_jobs: int = 1,
    ):
        self.w, self.seed = w, w.seed
        # the agent computer that went offline (its tasks fail from then on): (agent job, computer)
        offline_from = max(w.t0 + 86400 * T, w.now_ticks - 50 * 3600 * T)
        self.retention = None if retention_days is None else int(retention_days * 86400 * T)
        self.index: dict[str, dict[str, BackupEntity]] = {k: {} for k in KINDS}  # what EM lists
        self.profiles = [self._make_profile(s) for s in w.servers]
        self.repos = [r for p in self.profiles for r in p.repos]
        self.jobs: list[Job] = []  # listed under /jobs: backup, copy and replication jobs
        self.backup_jobs = [self._make_backup_job(j, vms_per_job) for j in range(backup_jobs)]
        self.copy_jobs = [self._make_copy_job(c) for c in range(copy_jobs if self.backup_jobs else 0)]
        self.agent_jobs = [self._make_agent_job(a, max(1, agent_computers)) for a in range(agent_jobs)]
        self.nas_jobs = [self._make_nas_job(n) for n in range(nas_jobs)]
        self.replicas: list[Replica] = []
        self.replica_of: dict[str, Replica] = {}  # replication job guid -> its Replica
        for job in w.jobs:
            self._make_replication_job(job)
        self.backups: list[Backup] = []
        for bj in self.backup_jobs + self.copy_jobs:
            self._add_backup(self._new_backup(bj, bj.name, bj.server, bj.repo, "Standard"))
        for aj in self.agent_jobs:
            self._add_agent_backups(aj)
        self.sessions: list[BackupJobSession] = []
        self.tasks: list[BackupTaskSession] = []
        self.rps: list[RestorePoint] = []
        self.vrps: list[VmRestorePoint] = []
        self.arps: list[AgentRestorePoint] = []
        self.files: list[BackupFile] = []
        self._heap: list[tuple[int, int, Made, BackupServer]] = []  # (when, sequence, what, server)
        self._seq = 0
        self._active: list[BackupJobSession] = []  # sessions still running at their server's view
        self.retired_count = 0
        # server index -> heap of what happened but EM has not collected yet
        self._pending: dict[int, list[tuple[int, int, Made, BackupServer]]] = {}
        self.runs = Runs(
            w, self.profiles, self._push, self.backup_jobs, self.copy_jobs, self.agent_jobs, self.nas_jobs,
            offline_from,
        )  # fmt: skip
        if self.backup_jobs:
            self._add_orphan_backup()
        self.runs.generate(w.now_ticks)
        self._reveal(w.now_ticks)
        self._retire(w.now_ticks)

    # ---------------------------------------------------------------- inventory
    def _make_profile(self, s: BackupServer) -> Profile:
        rng = random.Random(f"{self.seed}:bserver:{s.idx}")
        quirks = self.w.quirks.version_quirks
        tier = server_tier(s.version) if quirks else TIER_NEW
        p = Profile(
            server=s,
            tier=tier,
            vm_uid=tier >= TIER_MID,
            related=tier == TIER_NEW,
            vm_names=tier == TIER_NEW,
            typed_lists=tier >= TIER_MID,
            file_link=tier >= TIER_MID,
            immediate_copy=int(s.version.split(".")[0]) >= 12 or not quirks,
            tz=TZ_HOURS[s.idx % len(TZ_HOURS)],
            vcenter=s.vcenter,  # the vCenter the replication side's VmUid names
            hyperv_host=new_guid(rng),
        )
        for i, (name, rkind, path) in enumerate(REPOS):
            guid = new_guid(rng)
            capacity = rng.choice((4, 8, 16, 32, 64)) * 2**40 + rr(rng, 2**30) * 4096 % 2**40
            if s.idx == 0 and i == 2:  # an object-storage copy target reports neither capacity nor free
                # space, and a Kind EM's documentation does not list (em-samples/query-repositories-object-storage.xml)
                rkind, capacity = "AmazonS3Compatible", -1
                path = "https://s3.lab.local/veeam-copies/{job}/{file}"
            free_base, free_amp = rng.uniform(0.15, 0.45), rng.uniform(0.05, 0.3)
            phase, rate = rng.random(), rng.uniform(0.02, 0.2)
            r = Repository(guid, name, s, rkind, path, capacity, free_base, free_amp, phase, rate)
            p.repos.append(r)
            self.index["Repository"][r.guid] = r
        return p

    def free_space(self, r: Repository) -> int:
        """Free bytes at `now`: a deterministic triangle wave of time (space fills and is freed); -1
        (unknown) where the capacity is unknown too (object storage)."""
        if r.capacity < 0:
            return -1
        x = (self.w.now_ticks / (86400 * T) * r.rate + r.phase) % 1.0
        frac = r.free_base + r.free_amp * (1 - abs(2 * x - 1))
        cap = r.capacity if r.capacity > 0 else 12 * 2**40
        return int(cap * frac) // 4096 * 4096

    def _new_vm(self, p: Profile, rng: random.Random, hyperv: bool) -> Vm:
        p.vm_seq += 1
        name = f"{VM_PREFIXES[rr(rng, len(VM_PREFIXES))]}-{p.vm_seq:03d}"
        if hyperv:
            ref = f"urn:HyperV:Vm:{p.hyperv_host}.{new_guid(rng)}"
        else:
            ref = f"urn:VMware:Vm:{p.vcenter}.vm-{1000 + 7 * p.vm_seq}"
        size = SIZES_GIB[rr(rng, len(SIZES_GIB))] * 2**30
        return Vm(name, ref, size, rng.uniform(0.3, 0.9))

    def _offset(self, rng: random.Random, period: int, running: bool) -> int:
        """Ticks from t0 to a job's first run; a `running` job's newest run started a few minutes
        before the initial now and is still working."""
        w = self.w
        if running:
            last = w.now_ticks - int(rng.uniform(2.0, 4.0) * 60 * T * w.scale) - 45 * T
            return (last - w.t0) % period
        return rr(rng, period)

    def _make_backup_job(self, j: int, nvms: int) -> Job:
        w = self.w
        rng = random.Random(f"{self.seed}:bjob:{j}")
        guid = new_guid(rng)
        server = w.servers[j % len(w.servers)]
        p = self.profiles[server.idx]
        name = f"{JOB_PREFIXES[rr(rng, len(JOB_PREFIXES))]} {j + 1:02d} Backup"
        hyperv = j % 4 == 1
        configured = j % 7 != 5
        vms = tuple(self._new_vm(p, rng, hyperv) for _ in range(nvms))
        running = j == 0 or rng.random() < w.running_share
        job = Job(
            idx=j,
            guid=guid,
            name=name,
            server=server,
            job_type="Backup",
            platform=("Hyperv" if (j // 4) % 2 == 0 else "HyperV") if hyperv else "VMware",
            description=(
                "",
                f"Nightly backup of {name.rsplit(' ', 2)[0]} VMs",
                "Created by LAB\\veeam.admin at 3/4/2024 10:12 AM.",
                "Backup of R&D <lab> VMs",
            )[j % 4],
            sched_configured=configured,
            sched_enabled=configured and j % 7 != 3,
            vms=vms,
            offset=self._offset(rng, w.period, running),
            period=w.period,
            retain=7 + j % 3 * 7,
            repo=p.repos[j % 2],
            chain_per_vm=p.tier == TIER_NEW and j % 2 == 0,
            reverse=j % 5 == 3,
        )
        self.jobs.append(job)
        self.index["Job"][job.guid] = job
        return job

    def _make_copy_job(self, c: int) -> Job:
        w = self.w
        rng = random.Random(f"{self.seed}:copyjob:{c}")
        source = self.backup_jobs[c % len(self.backup_jobs)]
        guid, server = new_guid(rng), source.server
        p = self.profiles[server.idx]
        name = f"Backup Copy Job {c + 1}"
        worker_guid = worker_name = None
        if p.immediate_copy:
            job_type, platform = "ImmediateBackupCopy", "CustomPlatform"
            worker_guid, worker_name = new_guid(rng), f"{name}\\{source.name}"
        else:
            job_type, platform = "BackupCopy", source.platform
        # the open worker session of every copy job started a day or more before the initial now
        last = w.now_ticks - int(rng.uniform(1.0, 1.9) * 86400 * T)
        job = Job(
            idx=c,
            guid=guid,
            name=name,
            server=server,
            job_type=job_type,
            platform=platform,
            description=f"Created by LAB\\veeam.admin (copies of {source.name})",
            sched_configured=True,
            sched_enabled=True,
            vms=source.vms,
            offset=(last - w.t0) % COPY_PERIOD,
            period=COPY_PERIOD,
            retain=14,
            repo=p.repos[2],
            source=source,
            worker_guid=worker_guid,
            worker_name=worker_name,
            open_state=COPY_OPEN_STATES[c % len(COPY_OPEN_STATES)],
        )
        self.jobs.append(job)
        self.index["Job"][job.guid] = job
        return job

    def _make_agent_job(self, a: int, ncomp: int) -> AgentBackupJob:
        w = self.w
        rng = random.Random(f"{self.seed}:agentjob:{a}")
        guid = new_guid(rng)
        server = w.servers[a % len(w.servers)]
        p = self.profiles[server.idx]
        comps = []
        for _ in range(ncomp):
            p.agent_seq += 1
            name = f"{AGENT_PREFIXES[rr(rng, len(AGENT_PREFIXES))]}{p.agent_seq:03d}.corp.lab.local"
            comps.append(
                Vm(name, new_guid(rng), rng.choice((60, 120, 250, 500)) * 2**30, rng.uniform(0.2, 0.7))
            )
        aj = AgentBackupJob(
            idx=a,
            guid=guid,
            name=f"Agent Backup Job {AGENT_JOB_NAMES[a % len(AGENT_JOB_NAMES)]} {a + 1}",
            server=server,
            platform="AgentForLinux" if a % 2 else "AgentForWindows",
            description="Backup of physical servers" if a % 3 else "",
            computers=tuple(comps),
            offset=self._offset(rng, w.period, False),
            period=w.period,
        )
        self.index["AgentBackupJob"][aj.guid] = aj
        return aj

    def _make_nas_job(self, n: int) -> NasJob:
        w = self.w
        rng = random.Random(f"{self.seed}:nasjob:{n}")
        guid = new_guid(rng)
        shares = tuple(
            (new_guid(rng), new_guid(rng), NAS_SHARES[(n + i) % len(NAS_SHARES)].format(n=n + i + 1))
            for i in range(1 + n % 2)
        )
        job = NasJob(
            idx=n,
            guid=guid,
            name=f"{NAS_JOB_NAMES[n % len(NAS_JOB_NAMES)]} Backup",
            server=w.servers[n % len(w.servers)],
            description="Backup of file share" if n % 2 == 0 else "",
            shares=shares,
            offset=self._offset(rng, w.period, False),
            period=w.period,
        )
        self.index["NasJob"][job.guid] = job
        return job

    def _make_replication_job(self, job: ReplicationJob) -> None:
        """The replication side's job as the Job EM lists, and the Replica it writes."""
        rng = random.Random(f"{self.seed}:replica:{job.idx}")
        j = Job(
            idx=job.idx,
            guid=job.guid,
            name=job.name,
            server=job.server,
            job_type="Replica",
            platform="Hyperv" if job.idx % 3 == 2 else "VMware",
            description=("Replication to DR site", "", "Replicas & failover plan <DR>")[job.idx % 3],
            sched_configured=True,
            sched_enabled=True,
            vms=tuple(Vm(v.name, None, v.size, 0.5) for v in job.vms),
            offset=job.offset,
            period=self.w.period,
            retain=7,
            repl=job,
        )
        self.jobs.append(j)
        self.index["Job"][j.guid] = j
        rep = Replica(
            guid=new_guid(rng),
            job=j,
            name=job.name,
            server=job.server,
            repo=self.profiles[job.server.idx].repos[0],
            platform="Hyperv" if j.platform == "Hyperv" else "VMware",
        )
        self.replicas.append(rep)
        self.replica_of[job.guid] = rep
        self.index["Replica"][rep.guid] = rep

    def next_run(self, job: AnyJob) -> int | None:
        """NextRun ticks (whole seconds) of a scheduled job, None when it has none (copy jobs, disabled)."""
        if job.kind == "Job" and (job.job_type not in ("Backup", "Replica") or not job.sched_enabled):
            return None
        src: AnyJob | ReplicationJob = job.repl if job.kind == "Job" and job.repl is not None else job
        nxt = self.w.t0 + src.offset + src.next_k * self.w.period
        return nxt - nxt % T

    def _new_backup(
        self,
        job: Job | AgentBackupJob | None,
        name: str,
        server: BackupServer,
        repo: Repository | None,
        btype: str,
    ) -> Backup:
        """A backup of `job` (None: a deleted job's, or imported); a job's Standard or ParentBackup
        becomes its `backup`."""
        rng = random.Random(f"{self.seed}:backup:{name}:{server.idx}")
        guid = new_guid(rng)
        if job is None:
            platform = "VMware"
        elif job.kind == "AgentBackupJob":
            platform = job.platform
        else:
            platform = "HyperV" if job.platform.lower() == "hyperv" else "VMware"
        job_guid = job.guid if job is not None else new_guid(rng)
        b = Backup(guid, name, server, repo, btype, platform, job, job_guid)
        if job is not None and btype in ("Standard", "ParentBackup"):
            job.backup = b
        return b

    def _add_backup(self, b: Backup) -> Backup:
        self.backups.append(b)
        self.index["Backup"][b.guid] = b
        return b

    def _add_agent_backups(self, aj: AgentBackupJob) -> None:
        """An agent job's parent backup and a child backup per computer."""
        repo = self.profiles[aj.server.idx].repos[0]
        parent = self._add_backup(self._new_backup(aj, aj.name, aj.server, repo, "ParentBackup"))
        for comp in aj.computers:
            child = self._new_backup(aj, f"{aj.name} - {comp.name}", aj.server, repo, "ChildBackup")
            child.parent = parent
            parent.children.append(child)
            aj.children.append(self._add_backup(child))

    def _add_chain(
        self, rng: random.Random, b: Backup, p: Profile, vms: list[Vm], first: int, points: int
    ) -> list[RestorePoint | VmRestorePoint | BackupFile]:
        """`points` daily restore points of `vms` in `b` from `first` (ticks, within its first hour),
        each with a backup file and VM restore points, as a job-less backup holds them: what to show."""
        made: list[RestorePoint | VmRestorePoint | BackupFile] = []
        for k in range(points):
            date = trunc(first + k * 86400 * T + rr(rng, 3600 * T), 3)
            rp = new_restore_point(rng, b, date)
            f = new_backup_file(rng, b, rp, p, b.name, date + 4 * T, k == 0, False, vms)
            for vm in vms:
                algorithm, point_type = ("Full", "Full") if k == 0 else ("Incremental", "Increment")
                v = new_vm_restore_point(
                    rng, rp, None, vm, date + rr(rng, 60 * T, 600 * T), algorithm, point_type
                )
                v.file = f
                f.vrps.append(v)
                made.append(v)
            made += [rp, f]
        return made

    def _add_orphan_backup(self) -> None:
        """A backup whose job was deleted: no listed job answers `JobUid==` for it."""
        s = self.w.servers[-1]
        p = self.profiles[s.idx]
        b = self._add_backup(self._new_backup(None, "Decommissioned ERP Backup", s, p.repos[0], "Standard"))
        rng = random.Random(f"{self.seed}:orphan")
        vms = [self._new_vm(p, rng, False) for _ in range(2)]
        for obj in self._add_chain(rng, b, p, vms, self.w.t0, 3):
            when = obj.date if obj.kind == "RestorePoint" else obj.created
            self._push(when, obj, s)

    def import_backup(self, server: BackupServer, weeks: float, points: int) -> Backup:
        """See World.import_backup. The backup copies the chain of a backup job of `server`."""
        w = self.w
        job = next((j for j in self.backup_jobs if j.server is server), None)
        name = f"{job.name if job is not None else 'Backup Job'}_imported"
        n = sum(1 for b in self.backups if b.imported)
        rng = random.Random(f"{self.seed}:import:{server.idx}:{n}")
        b = self._new_backup(None, name, server, None, "Standard")
        b.imported, b.guid = True, new_guid(rng)  # a backup of the same name imported again is new
        self._add_backup(b)
        p = self.profiles[server.idx]
        vms = list(job.vms[:2]) if job is not None else [self._new_vm(p, rng, False) for _ in range(2)]
        for obj in self._add_chain(rng, b, p, vms, w.now_ticks - int(weeks * 7 * 86400 * T), points):
            self._reveal_one(obj)
        return b

    # ---------------------------------------------------------------- time
    def _push(self, when: int, obj: Made, server: BackupServer) -> None:
        """Show `obj` once EM has collected its backup server up to `when` (`server.view`, the
        replication side's per-server collection lag)."""
        if when <= server.view:  # already collected: no need to queue it
            self._reveal_one(obj)
        else:
            self._seq += 1
            heapq.heappush(self._heap, (when, self._seq, obj, server))

    def _reveal(self, upto: int) -> None:
        heap, pending = self._heap, self._pending
        while heap and heap[0][0] <= upto:
            item = heapq.heappop(heap)
            if item[0] <= item[3].view:
                self._reveal_one(item[2])
            else:  # happened, but EM has not collected it from its backup server yet
                heapq.heappush(pending.setdefault(item[3].idx, []), item)
        for waiting in pending.values():
            while waiting and waiting[0][0] <= waiting[0][3].view:
                self._reveal_one(heapq.heappop(waiting)[2])

    def _reveal_one(self, obj: Made) -> None:
        index = self.index
        if obj.kind == "BackupJobSession":
            si, ti, tasks = index["BackupJobSession"], index["BackupTaskSession"], self.tasks
            for js in (obj, *obj.children):
                self.sessions.append(js)
                si[js.guid] = js
                for t in js.tasks:
                    tasks.append(t)
                    ti[t.guid] = t
            if obj.end > obj.server.view:
                self._active.append(obj)
        elif obj.kind == "VmRestorePoint":
            if not obj.rp.retired:
                self.vrps.append(obj)
                index["VmRestorePoint"][obj.guid] = obj
        elif obj.kind == "AgentRestorePoint":
            if not obj.rp.retired:
                self.arps.append(obj)
                index["AgentRestorePoint"][obj.guid] = obj
        elif obj.kind == "BackupFile":
            if not obj.rp.retired:
                self.files.append(obj)
                index["BackupFile"][obj.guid] = obj
        elif not obj.retired:
            self.rps.append(obj)
            index["RestorePoint"][obj.guid] = obj

    def _retire(self, now: int) -> None:
        """Remove what retention removed by `now`: restore points (with their VM restore points and
        backup files) and VM replica points older than the retention."""
        if self.retention is None:
            return
        keep = self.retention
        # an imported backup has no job, so no job's retention removes its points
        gone = [rp for rp in self.rps if rp.date < rp.backup.server.view - keep and not rp.backup.imported]
        removed = self.w.removed
        if gone:
            ri, vi, fi = self.index["RestorePoint"], self.index["VmRestorePoint"], self.index["BackupFile"]
            ai = self.index["AgentRestorePoint"]
            for rp in gone:
                rp.retired = True
                ri.pop(rp.guid, None)
                removed.add(rp.uid)
                for v in rp.vrps:
                    if vi.pop(v.guid, None) is not None:
                        removed.add(v.uid)
                for a in rp.arps:
                    if ai.pop(a.guid, None) is not None:
                        removed.add(a.uid)
                for f in rp.files:
                    if fi.pop(f.guid, None) is not None:
                        removed.add(f.uid)
            self.retired_count += len(gone)
            self.rps = [rp for rp in self.rps if not rp.retired]
            self.vrps = [v for v in self.vrps if not v.rp.retired]
            self.arps = [a for a in self.arps if not a.rp.retired]
            self.files = [f for f in self.files if not f.rp.retired]
        w = self.w
        if any(p.created < p.task.js.job.server.view - keep for p in w.points):
            idx = w.index["VmReplicaPoint"]
            kept = []
            for p in w.points:
                if p.created < p.task.js.job.server.view - keep:
                    idx.pop(p.guid, None)
                    removed.add(p.uid)
                else:
                    kept.append(p)
            w.points[:] = kept

    def purge(self, history: int) -> None:
        """EM's history retention: job sessions that started more than `history` ticks before their
        backup server's view are no longer listed, with their task sessions and (agent) child sessions."""
        old = [js for js in self.sessions if js.parent is None and js.start < js.server.view - history]
        if not old:
            return
        gone: set[int] = set()
        si, ti, removed = self.index["BackupJobSession"], self.index["BackupTaskSession"], self.w.removed
        for parent in old:
            for js in (parent, *parent.children):
                gone.add(id(js))
                if si.pop(js.guid, None) is not None:
                    removed.add(js.uid)
                for t in js.tasks:
                    if ti.pop(t.guid, None) is not None:
                        removed.add(t.uid)
        self.sessions = [js for js in self.sessions if id(js) not in gone]
        self.tasks = [t for t in self.tasks if id(t.js) not in gone]

    def advance(self, new: int) -> set[str]:
        """Move to `new` (ticks); returns the guids whose rendering changed (under the world's lock)."""
        changed: set[str] = set()
        for js in self._active:
            changed.add(js.guid)
            for c in js.children:
                changed.add(c.guid)
                changed.update(t.guid for t in c.tasks)
            changed.update(t.guid for t in js.tasks)
        changed.update(j.guid for j in self.jobs)  # NextRun moves
        changed.update(a.guid for a in self.agent_jobs)
        changed.update(n.guid for n in self.nas_jobs)
        changed.update(r.guid for r in self.repos)  # free space moves
        self.runs.generate(new)
        self._reveal(new)
        self._active = [js for js in self._active if js.end > js.server.view]
        self._retire(new)
        return changed

    # ---------------------------------------------------------------- state at now
    def js_state(self, js: BackupJobSession) -> tuple[str, int | None, int, int | None]:
        """(State, result index or None, progress, end ticks or None) of a backup job session as EM
        shows it at now (as of its backup server's last collection)."""
        now = js.server.view
        if js.end <= now:
            return "Stopped", js.result, js.final_progress, js.end
        if js.open_state is not None:  # a copy session: open for its whole interval
            return js.open_state, None, min(99, int(100 * (now - js.start) / (js.end - js.start))), None
        if js.children:
            done = sum(1 for c in js.children if c.end <= now)
            return "Working", None, min(99, done * 100 // len(js.children)), None
        tasks = js.tasks
        if not tasks:  # a file-share session: no task sessions
            return "Working", None, min(99, int(100 * (now - js.start) / (js.end - js.start))), None
        done = sum(1 for t in tasks if t.end <= now)
        if done == len(tasks):
            state = "Postprocessing"
        elif all(t.work_start > now for t in tasks):
            state = "Starting"
        else:
            state = "Working"
        return state, None, min(99, done * 100 // len(tasks)), None

    def task_state(self, t: BackupTaskSession) -> tuple[str, int | None, int | None]:
        """(State, result index or None, end ticks or None) of a backup task session as EM shows it: a
        task in progress already reads Success on the servers that send VmUid, as the recorded one does
        (em-samples/query-task-inprogress-result-success.xml), None before it starts."""
        now = t.js.server.view
        if t.end <= now:
            return "Completed", t.result, t.end
        if t.work_start <= now:
            return "InProgress", SUCCESS if self.profiles[t.js.server.idx].vm_uid else None, None
        return "Pending", None, None

    def total_size(self, t: BackupTaskSession) -> int:
        """TotalSize: the VM's source size (0 once the task failed)."""
        return 0 if t.result == FAILED and t.end <= t.js.server.view else t.vm.size

    def related_rps(self, js: BackupJobSession) -> list[RestorePoint]:
        """The restore points a finished backup session links with Rel="Related": those of per-machine
        chains on servers from 12.1 on (em-samples/query-v12-copy-and-retry-sessions.xml); none on the
        others (the 13.1 reference examples have none, em-backup-side.md §1)."""
        if (
            js.rps
            and js.end <= js.server.view
            and self.profiles[js.server.idx].related
            and js.job.kind == "Job"
            and js.job.chain_per_vm
        ):
            return js.rps
        return []

    def related_vrp(self, t: BackupTaskSession) -> VmRestorePoint | None:
        """The VmRestorePoint a task links with Rel="Related" (servers from 12.1 on, finished tasks)."""
        if t.vrp is not None and t.end <= t.js.server.view and self.profiles[t.js.server.idx].related:
            return t.vrp
        return None

    def profile(self, o: BackupEntity) -> Profile:
        """How the backup server of `o` answers."""
        return self.profiles[server_of(o).idx]

    def stats(self) -> dict[str, int]:
        return {
            "jobs": len(self.jobs),
            "agent_jobs": len(self.agent_jobs),
            "nas_jobs": len(self.nas_jobs),
            "backup_job_sessions": len(self.sessions),
            "backup_task_sessions": len(self.tasks),
            "repositories": len(self.repos),
            "backups": len(self.backups),
            "restore_points": len(self.rps),
            "vm_restore_points": len(self.vrps),
            "agent_restore_points": len(self.arps),
            "backup_files": len(self.files),
            "replicas": len(self.replicas),
            "running_backup_job_sessions": sum(1 for js in self.sessions if js.end > js.server.view),
            "retired_restore_points": self.retired_count,
        }
