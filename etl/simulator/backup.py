"""The backup side of the simulated estate (em-backup-side.md): jobs, agent jobs, file-share (NAS) jobs,
backup job and task sessions, repositories, backups, restore points, VM and agent restore points,
backup files and replicas.

Seeded like the replication side: every run is drawn from `random.Random(f"{seed}:<kind>:{job}:{run}")`,
so advancing time only adds the future. How a backup server answers depends on its version
(`Profile`): servers before 11 send no `VmUid`, no `Related` restore-point link, mistyped list links
and no VmRestorePoint -> BackupFile link; servers before 12.1 send no `Related` link either.
Retention (`retention_days`) removes restore points, their VM and agent restore points and backup
files, and VM replica points, once they are older than the retention; links to them stay (EM does not
rewrite history) and answer 404. One agent computer of the first agent job went offline two days
before the initial now: its tasks fail since, so its newest agent restore point is older than a day.
"""

from __future__ import annotations

import heapq
import random
import time

from .world import FAILED, SUCCESS, WARNING, T, fmt_name_ts, new_guid, trunc

PRECS = (0, 2, 3, 6, 7)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TIER_OLD, TIER_MID, TIER_NEW = 0, 1, 2
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
AGENT_OFFLINE = "Error: Unable to connect to the Veeam Agent on {name}: the host is not reachable"
NAS_FAILURES = (
    "Failed to process the file share: access is denied to \\\\{host}\\share",
    "1 of 3 file shares processed with warnings: some files were skipped because they are locked",
)
SIZES_GIB = (20, 40, 60, 60, 80, 100, 127, 200, 250, 500, 1024, 2048)
FAIL_REASONS = (
    "Error: There is not enough space on the disk. Failed to write data to the file [{path}]. "
    "Agent failed to process method {{DataTransfer.SyncDisk}}.",
    "Error: Failed to create VM snapshot. Timed out waiting for snapshot creation <retry 1/3>",
    "Error: Cannot connect to host esx07.lab.local: The operation has timed out",
    "Error: Unable to allocate processing resources. Error: Repository is unavailable & offline",
)
WARN_REASONS = (
    "Hard disk 1 (0 B) is skipped: disk is not supported by the hypervisor",
    "Changed block tracking cannot be enabled: one or more VM snapshots exist",
    "Unable to truncate Microsoft SQL Server transaction logs. Details: 'LAB\\svc_sql' & no rights",
    "Guest processing skipped: VMware Tools are not running",
)
COPY_FAILURES = (
    "Failed to synchronize the restore point: the target repository 'Offsite Copies' is unavailable",
    "Backup copy interval has expired: 2 of 5 VMs were not copied",
)
REPOS = (
    ("Default Backup Repository", "WindowsLocal", "C:\\Backup\\{job}\\{file}"),
    ("Linux Hardened Repository", "LinuxLocal", "/mnt/backup/{job}/{file}"),
    ("Offsite Copies", "CifsShare", "\\\\nas01.lab.local\\VeeamCopies\\{job}\\{file}"),
)
TZ_HOURS = (2, 1, -5, 0, 9, -8, 3)


def _rr(rng: random.Random, a: int, b: int | None = None) -> int:
    """`rng.randrange(a, b)` for the simulator's needs (uniform enough, several times cheaper)."""
    if b is None:
        a, b = 0, a
    return a + int(rng.random() * (b - a))


def server_tier(version: str) -> int:
    """TIER_NEW from 12.1 on, TIER_MID for 11.x-12.0, TIER_OLD before 11."""
    parts = [int(p) for p in version.split(".")[:2] if p.isdigit()] + [0, 0]
    if (parts[0], parts[1]) >= (12, 1):
        return TIER_NEW
    return TIER_MID if parts[0] >= 11 else TIER_OLD


def sql_name(ticks: int) -> str:
    """SQL-Server-style restore point name, e.g. `Jun  5 2025  1:01AM` (UTC)."""
    tm = time.gmtime(ticks // T)
    h12 = tm.tm_hour % 12 or 12
    return (
        f"{MONTHS[tm.tm_mon - 1]} {tm.tm_mday:>2} {tm.tm_year} {h12:>2}:{tm.tm_min:02d}"
        f"{'AM' if tm.tm_hour < 12 else 'PM'}"
    )


def file_stamp(ticks: int, tz_hours: int) -> str:
    """The VBR server's local time as backup file names carry it: `2025-06-16T060031`."""
    tm = time.gmtime(ticks // T + tz_hours * 3600)
    return f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}T{tm.tm_hour:02d}{tm.tm_min:02d}{tm.tm_sec:02d}"


def ratio(x: float) -> str:
    """A ratio as EM writes it: invariant culture, at most two decimals, `1` not `1.00`."""
    return format(round(x, 2), "g")


class Profile:
    """How one backup server answers, decided by its version."""

    __slots__ = (
        "server",
        "tier",
        "vm_uid",
        "related",
        "vm_names",
        "typed_lists",
        "file_link",
        "immediate_copy",
        "tz",
        "vcenter",
        "hyperv_host",
        "repos",
        "vm_seq",
        "agent_seq",
    )


class Repository:
    __slots__ = (
        "guid",
        "name",
        "server",
        "rkind",
        "path",
        "capacity",
        "free_base",
        "free_amp",
        "phase",
        "rate",
    )
    kind = "Repository"

    @property
    def uid(self) -> str:
        return f"urn:veeam:Repository:{self.guid}"


class Job:
    """A job EM lists under /jobs (Backup, Replica, BackupCopy, ImmediateBackupCopy)."""

    __slots__ = (
        "idx",
        "guid",
        "name",
        "server",
        "job_type",
        "platform",
        "description",
        "sched_configured",
        "sched_enabled",
        "vms",
        "offset",
        "period",
        "next_k",
        "pointed",
        "backup",
        "chain_per_vm",
        "reverse",
        "repl",
        "source",
        "worker_guid",
        "worker_name",
        "open_state",
        "retain",
    )
    kind = "Job"

    @property
    def uid(self) -> str:
        return f"urn:veeam:Job:{self.guid}"


class AgentJob:
    """An agent backup job (/agents/jobs); its sessions reference it as `urn:veeam:Job:{guid}`."""

    __slots__ = (
        "idx",
        "guid",
        "name",
        "server",
        "platform",
        "description",
        "computers",
        "offset",
        "period",
        "next_k",
        "pointed",
        "backup",
        "children",
    )
    kind = "AgentBackupJob"
    job_type = "AgentBackup"
    sched_configured = sched_enabled = True

    @property
    def uid(self) -> str:
        return f"urn:veeam:AgentBackupJob:{self.guid}"


class NasJob:
    """A file-share backup job (/nas/jobs, `<NASJob Type="NasJob">`): no JobType or Platform in the
    entity; its sessions (JobType NasBackup) reference it as `urn:veeam:Job:{guid}`."""

    __slots__ = (
        "idx",
        "guid",
        "name",
        "server",
        "description",
        "shares",
        "offset",
        "period",
        "next_k",
        "pointed",
    )
    kind = "NasJob"
    job_type = platform = None
    sched_configured = sched_enabled = True

    @property
    def uid(self) -> str:
        return f"urn:veeam:NasJob:{self.guid}"


class Session:
    __slots__ = (
        "guid",
        "job",
        "server",
        "job_guid",
        "job_name",
        "job_type",
        "job_seg",
        "is_retry",
        "start",
        "end",
        "result",
        "failure",
        "prec",
        "name",
        "tasks",
        "visible_at",
        "parent",
        "children",
        "open_state",
        "final_progress",  # Progress once Stopped: 100, but 0 for a v12 copy parent (em-samples)
        "rps",  # restore points it made, linked `Related` on per-machine chains of newer servers
    )
    kind = "BackupJobSession"

    @property
    def uid(self) -> str:
        return f"urn:veeam:BackupJobSession:{self.guid}"


class Task:
    __slots__ = ("guid", "js", "vm", "created", "work_start", "end", "result", "reason", "prec", "vrp")
    kind = "BackupTaskSession"

    @property
    def name(self) -> str:
        return f"{self.vm[0]}@{fmt_name_ts(self.created, False)}"

    @property
    def uid(self) -> str:
        return f"urn:veeam:BackupTaskSession:{self.guid}"


class Backup:
    __slots__ = (
        "guid",
        "name",
        "server",
        "repo",
        "platform",
        "btype",
        "parent",
        "children",
        "job",
        "job_guid",
        "imported",
    )
    kind = "Backup"

    @property
    def uid(self) -> str:
        return f"urn:veeam:Backup:{self.guid}"


class RestorePoint:
    __slots__ = ("guid", "backup", "date", "prec", "name", "vrps", "arps", "files", "retired")
    kind = "RestorePoint"

    @property
    def uid(self) -> str:
        return f"urn:veeam:RestorePoint:{self.guid}"


class VmRestorePoint:
    __slots__ = ("guid", "rp", "task", "vm", "created", "prec", "algorithm", "point_type", "file")
    kind = "VmRestorePoint"

    @property
    def name(self) -> str:
        return f"{self.vm[0]}@{fmt_name_ts(self.created, False)}"

    @property
    def uid(self) -> str:
        return f"urn:veeam:VmRestorePoint:{self.guid}"


class AgentRestorePoint:
    """An agent computer's restore point (em-backup-side.md §10): `<computer>@<time>`, no VmName or
    HierarchyObjRef; `Up` links to its restore point, backup file and backup server."""

    __slots__ = ("guid", "rp", "file", "comp", "created", "prec", "algorithm", "point_type")
    kind = "AgentRestorePoint"

    @property
    def name(self) -> str:
        return f"{self.comp[0]}@{fmt_name_ts(self.created, False)}"

    @property
    def uid(self) -> str:
        return f"urn:veeam:AgentRestorePoint:{self.guid}"


class BackupFile:
    __slots__ = (
        "guid",
        "backup",
        "rp",
        "name",
        "path",
        "ftype",
        "backup_size",
        "data_size",
        "dedup",
        "compress",
        "created",
        "prec",
        "vrps",
    )
    kind = "BackupFile"

    @property
    def uid(self) -> str:
        return f"urn:veeam:BackupFile:{self.guid}"


class Replica:
    __slots__ = ("guid", "job", "name", "server", "repo", "platform")
    kind = "Replica"

    @property
    def uid(self) -> str:
        return f"urn:veeam:Replica:{self.guid}"


def href(w, kind: str, guid: str, entity: bool, origin: str | None = None) -> str:
    """The Href EM gives a backup-side object (entity form with `?format=Entity`)."""
    base = (w.quirks.public_origin or origin or w.origin).rstrip("/")
    return f"{base}/api/{SEGMENT[kind]}/{guid}" + ("?format=Entity" if entity else "")


def server_of(o):
    """The backup server an object belongs to."""
    kind = o.kind
    if kind == "BackupTaskSession":
        return o.js.server
    if kind in ("VmRestorePoint", "AgentRestorePoint"):
        return o.rp.backup.server
    if kind in ("RestorePoint", "BackupFile"):
        return o.backup.server
    return o.server


class BackupSide:
    """The backup half of a `World`; built by it and advanced with it under `world.lock`."""

    def __init__(
        self,
        w,
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
        self.offline_from = max(w.t0 + 86400 * T, w.now_ticks - 50 * 3600 * T)
        self.retention = None if retention_days is None else int(retention_days * 86400 * T)
        self.index: dict[str, dict] = {k: {} for k in KINDS}
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
        for job in self.backup_jobs + self.copy_jobs:
            self._add_backup(self._new_backup(job, job.name, job.server, job.backup.repo, "Standard"))
        for aj in self.agent_jobs:
            self._add_agent_backups(aj)
        self.sessions: list[Session] = []
        self.tasks: list[Task] = []
        self.rps: list[RestorePoint] = []
        self.vrps: list[VmRestorePoint] = []
        self.arps: list[AgentRestorePoint] = []
        self.files: list[BackupFile] = []
        self._heap: list = []
        self._seq = 0
        self._active: list[Session] = []
        self.retired_count = 0
        self._pending: dict[int, list] = {}  # server index -> heap of what EM has not collected yet
        if self.backup_jobs:
            self._add_orphan_backup()
        self._generate(w.now_ticks)
        self._reveal(w.now_ticks)
        self._retire(w.now_ticks)

    # ---------------------------------------------------------------- inventory
    def _make_profile(self, s) -> Profile:
        rng = random.Random(f"{self.seed}:bserver:{s.idx}")
        p = Profile()
        p.server = s
        p.tier = server_tier(s.version) if self.w.quirks.version_quirks else TIER_NEW
        p.vm_uid = p.tier >= TIER_MID
        p.related = p.tier == TIER_NEW
        p.vm_names = p.tier == TIER_NEW
        p.typed_lists = p.file_link = p.tier >= TIER_MID
        p.immediate_copy = int(s.version.split(".")[0]) >= 12 or not self.w.quirks.version_quirks
        p.tz = TZ_HOURS[s.idx % len(TZ_HOURS)]
        p.vcenter, p.hyperv_host = s.vcenter, new_guid(rng)  # the vCenter the replication side's VmUid names
        p.vm_seq = p.agent_seq = 0
        p.repos = []
        for i, (name, rkind, path) in enumerate(REPOS):
            r = Repository()
            r.guid, r.name, r.server, r.rkind, r.path = new_guid(rng), name, s, rkind, path
            r.capacity = rng.choice((4, 8, 16, 32, 64)) * 2**40 + _rr(rng, 2**30) * 4096 % 2**40
            if s.idx == 0 and i == 2:  # an object-storage copy target reports neither capacity nor free
                # space, and a Kind EM's documentation does not list (em-samples/query-repositories-object-storage.xml)
                r.rkind, r.capacity = "AmazonS3Compatible", -1
                r.path = "https://s3.lab.local/veeam-copies/{job}/{file}"
            r.free_base, r.free_amp = rng.uniform(0.15, 0.45), rng.uniform(0.05, 0.3)
            r.phase, r.rate = rng.random(), rng.uniform(0.02, 0.2)
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

    def _new_vm(self, p: Profile, rng: random.Random, hyperv: bool) -> tuple:
        p.vm_seq += 1
        name = f"{VM_PREFIXES[_rr(rng, len(VM_PREFIXES))]}-{p.vm_seq:03d}"
        if hyperv:
            ref = f"urn:HyperV:Vm:{p.hyperv_host}.{new_guid(rng)}"
        else:
            ref = f"urn:VMware:Vm:{p.vcenter}.vm-{1000 + 7 * p.vm_seq}"
        size = SIZES_GIB[_rr(rng, len(SIZES_GIB))] * 2**30
        return (name, ref, size, rng.uniform(0.3, 0.9))

    def _schedule(self, job, rng: random.Random, period: int, running: bool) -> None:
        w = self.w
        job.period, job.next_k, job.pointed = period, 0, {}
        if running:  # newest run started a few minutes before the initial now: still working
            last = w.now_ticks - int(rng.uniform(2.0, 4.0) * 60 * T * w.scale) - 45 * T
            job.offset = (last - w.t0) % period
        else:
            job.offset = _rr(rng, period)

    def _make_backup_job(self, j: int, nvms: int) -> Job:
        w = self.w
        rng = random.Random(f"{self.seed}:bjob:{j}")
        job = Job()
        job.idx, job.guid = j, new_guid(rng)
        job.server = w.servers[j % len(w.servers)]
        p = self.profiles[job.server.idx]
        job.name = f"{JOB_PREFIXES[_rr(rng, len(JOB_PREFIXES))]} {j + 1:02d} Backup"
        job.job_type = "Backup"
        hyperv = j % 4 == 1
        job.platform = ("Hyperv" if (j // 4) % 2 == 0 else "HyperV") if hyperv else "VMware"
        job.description = (
            "",
            f"Nightly backup of {job.name.rsplit(' ', 2)[0]} VMs",
            "Created by LAB\\veeam.admin at 3/4/2024 10:12 AM.",
            "Backup of R&D <lab> VMs",
        )[j % 4]
        job.sched_configured = j % 7 != 5
        job.sched_enabled = job.sched_configured and j % 7 != 3
        job.vms = tuple(self._new_vm(p, rng, hyperv) for _ in range(nvms))
        job.chain_per_vm = p.tier == TIER_NEW and j % 2 == 0
        job.reverse = j % 5 == 3
        job.repl = job.source = job.worker_guid = job.worker_name = job.open_state = None
        job.retain = 7 + j % 3 * 7
        running = j == 0 or rng.random() < w.running_share
        self._schedule(job, rng, w.period, running)
        job.backup = Backup()
        job.backup.repo = p.repos[j % 2]
        self.jobs.append(job)
        self.index["Job"][job.guid] = job
        return job

    def _make_copy_job(self, c: int) -> Job:
        w = self.w
        rng = random.Random(f"{self.seed}:copyjob:{c}")
        source = self.backup_jobs[c % len(self.backup_jobs)]
        job = Job()
        job.idx, job.guid, job.server = c, new_guid(rng), source.server
        p = self.profiles[job.server.idx]
        job.name = f"Backup Copy Job {c + 1}"
        job.source = source
        if p.immediate_copy:
            job.job_type, job.platform = "ImmediateBackupCopy", "CustomPlatform"
            job.worker_guid = new_guid(rng)
            job.worker_name = f"{job.name}\\{source.name}"
        else:
            job.job_type, job.platform = "BackupCopy", source.platform
            job.worker_guid = job.worker_name = None
        job.description = f"Created by LAB\\veeam.admin (copies of {source.name})"
        job.sched_configured = job.sched_enabled = True
        job.vms = source.vms
        job.chain_per_vm = job.reverse = False
        job.repl = None
        job.retain = 14
        job.open_state = COPY_OPEN_STATES[c % len(COPY_OPEN_STATES)]
        job.period, job.next_k, job.pointed = COPY_PERIOD, 0, {}
        # the open worker session of every copy job started a day or more before the initial now
        last = w.now_ticks - int(rng.uniform(1.0, 1.9) * 86400 * T)
        job.offset = (last - w.t0) % COPY_PERIOD
        job.backup = Backup()
        job.backup.repo = p.repos[2]
        self.jobs.append(job)
        self.index["Job"][job.guid] = job
        return job

    def _make_agent_job(self, a: int, ncomp: int) -> AgentJob:
        w = self.w
        rng = random.Random(f"{self.seed}:agentjob:{a}")
        aj = AgentJob()
        aj.idx, aj.guid = a, new_guid(rng)
        aj.server = w.servers[a % len(w.servers)]
        p = self.profiles[aj.server.idx]
        aj.name = f"Agent Backup Job {AGENT_JOB_NAMES[a % len(AGENT_JOB_NAMES)]} {a + 1}"
        aj.platform = "AgentForLinux" if a % 2 else "AgentForWindows"
        aj.description = "Backup of physical servers" if a % 3 else ""
        comps = []
        for _ in range(ncomp):
            p.agent_seq += 1
            name = f"{AGENT_PREFIXES[_rr(rng, len(AGENT_PREFIXES))]}{p.agent_seq:03d}.corp.lab.local"
            comps.append(
                (name, new_guid(rng), rng.choice((60, 120, 250, 500)) * 2**30, rng.uniform(0.2, 0.7))
            )
        aj.computers = tuple(comps)
        self._schedule(aj, rng, w.period, False)
        aj.children = []
        self.index["AgentBackupJob"][aj.guid] = aj
        return aj

    def _make_nas_job(self, n: int) -> NasJob:
        w = self.w
        rng = random.Random(f"{self.seed}:nasjob:{n}")
        job = NasJob()
        job.idx, job.guid = n, new_guid(rng)
        job.server = w.servers[n % len(w.servers)]
        job.name = f"{NAS_JOB_NAMES[n % len(NAS_JOB_NAMES)]} Backup"
        job.description = "Backup of file share" if n % 2 == 0 else ""
        job.shares = tuple(
            (new_guid(rng), new_guid(rng), NAS_SHARES[(n + i) % len(NAS_SHARES)].format(n=n + i + 1))
            for i in range(1 + n % 2)
        )
        self._schedule(job, rng, w.period, False)
        self.index["NasJob"][job.guid] = job
        return job

    def _make_replication_job(self, job) -> None:
        """The replication side's job as the Job EM lists, and the Replica it writes."""
        rng = random.Random(f"{self.seed}:replica:{job.idx}")
        j = Job()
        j.idx, j.guid, j.name, j.server, j.repl = job.idx, job.guid, job.name, job.server, job
        j.job_type = "Replica"
        j.platform = "Hyperv" if job.idx % 3 == 2 else "VMware"
        j.description = ("Replication to DR site", "", "Replicas & failover plan <DR>")[job.idx % 3]
        j.sched_configured = j.sched_enabled = True
        j.vms = tuple((v[0], None, v[2], 0.5) for v in job.vms)
        j.period, j.offset, j.next_k, j.pointed = self.w.period, job.offset, 0, {}
        j.backup = j.source = j.worker_guid = j.worker_name = j.open_state = None
        j.chain_per_vm = j.reverse = False
        j.retain = 7
        self.jobs.append(j)
        self.index["Job"][j.guid] = j
        rep = Replica()
        rep.guid, rep.job, rep.name, rep.server = new_guid(rng), j, job.name, job.server
        rep.repo = self.profiles[job.server.idx].repos[0]
        rep.platform = "Hyperv" if j.platform == "Hyperv" else "VMware"
        self.replicas.append(rep)
        self.replica_of[job.guid] = rep
        self.index["Replica"][rep.guid] = rep

    def next_run(self, job) -> int | None:
        """NextRun ticks (whole seconds) of a scheduled job, None when it has none (copy jobs, disabled)."""
        if job.kind == "Job" and (job.job_type not in ("Backup", "Replica") or not job.sched_enabled):
            return None
        src = job.repl if job.kind == "Job" and job.repl is not None else job
        nxt = self.w.t0 + src.offset + src.next_k * self.w.period
        return nxt - nxt % T

    def _new_backup(self, job, name, server, repo, btype) -> Backup:
        b = job.backup if job is not None and btype in ("Standard", "ParentBackup") else Backup()
        rng = random.Random(f"{self.seed}:backup:{name}:{server.idx}")
        b.guid, b.name, b.server, b.repo, b.btype = new_guid(rng), name, server, repo, btype
        b.parent, b.children, b.job, b.imported = None, [], job, False
        b.job_guid = job.guid if job is not None else new_guid(rng)
        if job is None:
            b.platform = "VMware"
        elif job.kind == "AgentBackupJob":
            b.platform = job.platform
        else:
            b.platform = "HyperV" if job.platform.lower() == "hyperv" else "VMware"
        return b

    def _add_backup(self, b: Backup) -> Backup:
        self.backups.append(b)
        self.index["Backup"][b.guid] = b
        return b

    def _add_agent_backups(self, aj: AgentJob) -> None:
        repo = self.profiles[aj.server.idx].repos[0]
        aj.backup = Backup()
        parent = self._add_backup(self._new_backup(aj, aj.name, aj.server, repo, "ParentBackup"))
        aj.children = []
        for comp in aj.computers:
            child = self._new_backup(aj, f"{aj.name} - {comp[0]}", aj.server, repo, "ChildBackup")
            child.parent = parent
            parent.children.append(child)
            aj.children.append(self._add_backup(child))

    def _add_orphan_backup(self) -> None:
        """A backup whose job was deleted: no listed job answers `JobUid==` for it."""
        w = self.w
        s = w.servers[-1]
        p = self.profiles[s.idx]
        b = self._add_backup(self._new_backup(None, "Decommissioned ERP Backup", s, p.repos[0], "Standard"))
        rng = random.Random(f"{self.seed}:orphan")
        vms = [self._new_vm(p, rng, False) for _ in range(2)]
        for n in range(3):
            date = trunc(w.t0 + n * 86400 * T + _rr(rng, 3600 * T), 3)
            rp = self._new_rp(rng, b, date)
            f = self._new_file(rng, b, rp, p, "Decommissioned ERP Backup", date + 4 * T, n == 0, False, vms)
            for vm in vms:
                v = self._new_vrp(rng, rp, None, vm, date + _rr(rng, 60 * T, 600 * T))
                v.algorithm, v.point_type = ("Full", "Full") if n == 0 else ("Incremental", "Increment")
                v.file = f
                f.vrps.append(v)
                self._push(v.created, v, s)
            self._push(rp.date, rp, s)
            self._push(f.created, f, s)

    # ---------------------------------------------------------------- restore points and files
    def _new_rp(self, rng, backup, date) -> RestorePoint:
        rp = RestorePoint()
        rp.guid, rp.backup, rp.prec = new_guid(rng), backup, PRECS[int(rng.random() * 5)]
        rp.date = trunc(date, rp.prec)
        rp.name = sql_name(rp.date)
        rp.vrps, rp.arps, rp.files, rp.retired = [], [], [], False
        return rp

    def _new_vrp(self, rng, rp, task, vm, created) -> VmRestorePoint:
        v = VmRestorePoint()
        v.guid, v.rp, v.task, v.vm, v.prec = new_guid(rng), rp, task, vm, PRECS[int(rng.random() * 5)]
        v.created = trunc(created, v.prec)
        v.file = None
        rp.vrps.append(v)
        return v

    def _new_arp(self, rng, rp, f, comp, created, full: bool, synthetic: bool) -> AgentRestorePoint:
        a = AgentRestorePoint()
        a.guid, a.rp, a.file, a.comp, a.prec = new_guid(rng), rp, f, comp, PRECS[int(rng.random() * 5)]
        a.created = trunc(created, a.prec)
        if full:
            a.algorithm, a.point_type = "Full", "Full"
        elif synthetic:
            a.algorithm, a.point_type = "SyntheticFull", "Full"
        else:
            a.algorithm, a.point_type = "Incremental", "Increment"
        rp.arps.append(a)
        return a

    def _new_file(self, rng, backup, rp, p, chain_name, created, full, per_vm, vms, ftype=None) -> BackupFile:
        f = BackupFile()
        f.guid, f.backup, f.rp, f.prec = new_guid(rng), backup, rp, PRECS[int(rng.random() * 5)]
        f.created = trunc(created, f.prec)
        f.ftype = ftype or ("vbk" if full else "vib")
        suffix = f"_{rng.getrandbits(16):04X}" if per_vm else ""
        f.name = f"{chain_name}D{file_stamp(f.created, p.tz)}{suffix}.{f.ftype}"
        folder = backup.repo.path if backup.repo is not None else "D:\\Imported\\{job}\\{file}"
        f.path = folder.format(job=backup.name, file=f.name)
        data = 0
        for vm in vms:
            used = vm[2] * vm[3]
            data += int(used if full else used * rng.uniform(0.01, 0.12))
        dedup = rng.uniform(1.2, 6.0) if full else rng.uniform(0.99, 1.6)
        compress = rng.uniform(1.2, 3.5)
        f.dedup, f.compress = ratio(dedup), ratio(compress)
        f.data_size = data
        f.backup_size = int(data / (float(f.dedup) * float(f.compress)))
        f.vrps = []
        rp.files.append(f)
        return f

    # ---------------------------------------------------------------- runs
    def _sched(self, job, k: int) -> int:
        return self.w.t0 + job.offset + k * job.period

    def _generate(self, upto: int) -> None:
        for job in self.backup_jobs:
            while self._sched(job, job.next_k) <= upto:
                self._gen_backup_run(job, job.next_k)
                job.next_k += 1
        for job in self.copy_jobs:
            while self._sched(job, job.next_k) <= upto:
                self._gen_copy_run(job, job.next_k)
                job.next_k += 1
        for aj in self.agent_jobs:
            while self._sched(aj, aj.next_k) <= upto:
                self._gen_agent_run(aj, aj.next_k)
                aj.next_k += 1
        for nj in self.nas_jobs:
            while self._sched(nj, nj.next_k) <= upto:
                self._gen_nas_run(nj, nj.next_k)
                nj.next_k += 1

    def _session(self, rng, job, start, is_retry, job_guid, job_name, job_type, job_seg) -> Session:
        js = Session()
        js.guid, js.job, js.server, js.is_retry = new_guid(rng), job, job.server, is_retry
        js.job_guid, js.job_name, js.job_type, js.job_seg = job_guid, job_name, job_type, job_seg
        js.prec = PRECS[int(rng.random() * 5)]
        js.start = trunc(start, js.prec)
        js.name = f"{job_name}@{fmt_name_ts(js.start, rng.random() < 0.3)}"
        js.parent, js.children, js.open_state, js.tasks = None, (), None, []
        js.final_progress, js.rps = 100, []
        return js

    def _tasks(self, rng, js, vms, fail_p, warn_p, slots, created) -> None:
        scale = self.w.scale
        for vm in vms:
            t = Task()
            t.guid, t.js, t.vm, t.prec = new_guid(rng), js, vm, PRECS[int(rng.random() * 5)]
            created += _rr(rng, T // 5, 2 * T)
            unit = 10 ** (7 - t.prec)
            t.created = -(-created // unit) * unit  # rounded up: never before the job session
            slot = slots.index(min(slots))
            t.work_start = max(slots[slot], created) + _rr(rng, T, 10 * T)
            r = rng.random()
            t.result = FAILED if r < fail_p else WARNING if r < warn_p else SUCCESS
            dur = _rr(rng, 6 * 60 * T, 25 * 60 * T) // (3 if t.result == FAILED else 1)
            t.end = trunc(t.work_start + int(dur * scale) + T, t.prec)
            slots[slot] = t.end + _rr(rng, T, 5 * T)
            if t.result == FAILED:
                t.reason = rng.choice(FAIL_REASONS).format(path=f"{js.job_name}\\{vm[0]}.vib")
            else:
                t.reason = rng.choice(WARN_REASONS) if t.result == WARNING else ""
            t.vrp = None
            js.tasks.append(t)

    def _close(self, rng, js, tasks) -> None:
        js.visible_at = max(t.created for t in tasks)
        js.end = trunc(max(t.end for t in tasks) + _rr(rng, 5 * T, 30 * T), js.prec)
        js.result = max(t.result for t in tasks)
        js.failure = None
        if js.result != SUCCESS and rng.random() < 0.7:
            bad = next(t for t in tasks if t.result == js.result)
            nbad = sum(1 for t in tasks if t.result != SUCCESS)
            js.failure = (
                f"Processing {bad.vm[0]} {bad.reason}"
                if rng.random() < 0.5
                else f"{nbad} of {len(tasks)} objects processed with {('warnings', 'errors')[js.result == FAILED]}"
            )
        elif js.result == SUCCESS and self.profiles[js.server.idx].tier == TIER_NEW:
            js.failure = ""  # newer servers send an empty <FailureMessage />

    def _gen_backup_run(self, job: Job, k: int) -> None:
        rng = random.Random(f"{self.seed}:b:{job.idx}:{k}")
        start = self._sched(job, k) + _rr(rng, 45 * T)
        js, points = self._backup_session(job, k, rng, start, range(len(job.vms)), False)
        failed = [t.vm for t in js.tasks if t.result == FAILED]
        runs = [(js, points)]
        if failed:
            idx = [job.vms.index(vm) for vm in failed]
            rstart = js.end + int(rng.uniform(5, 15) * 60 * T * self.w.scale)
            retry, rpoints = self._backup_session(job, k, rng, rstart, idx, True)
            if retry.end < self._sched(job, k + 1):  # no time left before the next run: no retry
                runs.append((retry, rpoints))
        for js, points in runs:
            self._push(js.visible_at, js, job.server)
            for when, obj in points:
                if obj.kind == "VmRestorePoint":
                    vm = obj.vm
                    job.pointed[vm[1]] = job.pointed.get(vm[1], 0) + 1
                self._push(when, obj, job.server)

    def _backup_session(self, job, k, rng, start, vm_idx, retry):
        js = self._session(rng, job, start, retry, job.guid, job.name, "Backup", "jobs")
        slots = [js.start + _rr(rng, 20 * T, 60 * T) for _ in range(4)]
        vms = job.vms
        fail_p, warn_p = (0.10, 0.18) if retry else (0.04, 0.11)
        self._tasks(rng, js, [vms[i] for i in vm_idx], fail_p, warn_p, slots, js.start)
        self._close(rng, js, js.tasks)
        ok = [t for t in js.tasks if t.result != FAILED]
        points: list = []
        if not ok:
            return js, points
        p = self.profiles[job.server.idx]
        b = job.backup
        rp = self._new_rp(rng, b, js.start + _rr(rng, T, 3 * T))
        points.append((rp.date, rp))
        js.rps.append(rp)
        synthetic = k % 7 == 6
        shared = None
        if not job.chain_per_vm:
            full = any(job.pointed.get(t.vm[1], 0) == 0 for t in ok) or synthetic
            ftype = "vbk" if full else "vrb" if job.reverse else "vib"
            shared = self._new_file(
                rng, b, rp, p, job.name, js.start + _rr(rng, 2 * T, 6 * T), full, False,
                [t.vm for t in ok], ftype,
            )  # fmt: skip
            points.append((shared.created, shared))
        for t in ok:
            n = job.pointed.get(t.vm[1], 0)
            v = self._new_vrp(rng, rp, t, t.vm, max(t.work_start, t.end - _rr(rng, T, 20 * T)))
            if n == 0:
                v.algorithm, v.point_type = "Full", "Full"
            elif synthetic:
                v.algorithm, v.point_type = "SyntheticFull", "Full"
            elif job.reverse:
                v.algorithm, v.point_type = "ReversedIncremental", "ReverseIncrement"
            else:
                v.algorithm, v.point_type = "Incremental", "Increment"
            if shared is None:
                full = v.point_type == "Full"
                ftype = "vbk" if full else "vrb" if job.reverse else "vib"
                created = max(t.work_start, t.end - _rr(rng, 5 * T, 40 * T))
                f = self._new_file(rng, b, rp, p, job.name, created, full, True, [t.vm], ftype)
                points.append((t.end, f))
            else:
                f = shared
            v.file = f
            f.vrps.append(v)
            t.vrp = v
            points.append((t.end, v))
        return js, points

    def _gen_agent_run(self, aj: AgentJob, k: int) -> None:
        rng = random.Random(f"{self.seed}:a:{aj.idx}:{k}")
        start = self._sched(aj, k) + _rr(rng, 45 * T)
        parent = self._session(rng, aj, start, False, aj.guid, aj.name, "AgentBackup", "agents/jobs")
        p = self.profiles[aj.server.idx]
        children, points = [], []
        for ci, comp in enumerate(aj.computers):
            cname = f"{aj.name} - {comp[0]}"
            child = self._session(
                rng, aj, parent.start + _rr(rng, T, 10 * T), False, comp[1], cname, "AgentManagement",
                "agents/jobs",
            )  # fmt: skip
            child.parent = parent
            self._tasks(rng, child, [comp], 0.05, 0.12, [child.start + _rr(rng, T, 5 * T)], child.start)
            t = child.tasks[0]
            if self._offline(aj, ci, child.start):
                t.result, t.reason = FAILED, AGENT_OFFLINE.format(name=comp[0])
                t.end = trunc(t.work_start + _rr(rng, 60 * T, 300 * T), t.prec)
            self._close(rng, child, child.tasks)
            children.append(child)
            if t.result != FAILED:
                cb = aj.children[ci]
                n = aj.pointed.get(ci, 0)
                aj.pointed[ci] = n + 1
                rp = self._new_rp(rng, cb, child.start + _rr(rng, T, 3 * T))
                created = max(t.work_start, t.end - _rr(rng, 5 * T, 40 * T))
                f = self._new_file(rng, cb, rp, p, f"{cb.name}_{ci + 1}", created, n == 0, False, [comp])
                a = self._new_arp(
                    rng, rp, f, comp, max(t.work_start, created - _rr(rng, T, 60 * T)), n == 0, k % 7 == 6
                )
                points += [(rp.date, rp), (t.end, f), (t.end, a)]
        parent.children = children
        parent.visible_at = max(c.visible_at for c in children)
        parent.end = trunc(max(c.end for c in children) + _rr(rng, 5 * T, 30 * T), parent.prec)
        parent.result = max(c.result for c in children)
        parent.failure = None
        if parent.result != SUCCESS:
            bad = sum(1 for c in children if c.result != SUCCESS)
            parent.failure = f"{bad} of {len(children)} computers processed with warnings or errors"
        self._push(parent.visible_at, parent, aj.server)
        for when, obj in points:
            self._push(when, obj, aj.server)

    def _offline(self, aj: AgentJob, ci: int, start: int) -> bool:
        """Whether computer `ci` of `aj` was unreachable at `start`: the last computer of the first
        agent job (of two or more), from `offline_from` on."""
        return (
            aj.idx == 0
            and len(aj.computers) > 1
            and ci == len(aj.computers) - 1
            and start >= self.offline_from
        )

    def _gen_nas_run(self, job: NasJob, k: int) -> None:
        """A file-share backup run: one BackupJobSession of JobType NasBackup, no task sessions (EM
        promises tasks for Backup and Agent sessions only) and no restore point object (EM has none
        for file shares: em-backup-side.md §12)."""
        rng = random.Random(f"{self.seed}:n:{job.idx}:{k}")
        start = self._sched(job, k) + _rr(rng, 45 * T)
        js = self._session(rng, job, start, False, job.guid, job.name, "NasBackup", "nas/jobs")
        js.end = trunc(js.start + int(_rr(rng, 3 * 60 * T, 40 * 60 * T) * self.w.scale) + T, js.prec)
        r = rng.random()
        js.result = FAILED if r < 0.05 else WARNING if r < 0.15 else SUCCESS
        js.failure = None
        if js.result != SUCCESS:
            js.failure = NAS_FAILURES[js.result - 1].format(host=f"fs{job.idx + 1:02d}.corp.lab.local")
        elif self.profiles[js.server.idx].tier == TIER_NEW:
            js.failure = ""
        js.visible_at = js.start
        self._push(js.visible_at, js, job.server)

    def _gen_copy_run(self, job: Job, k: int) -> None:
        rng = random.Random(f"{self.seed}:c:{job.idx}:{k}")
        start = self._sched(job, k) + _rr(rng, 60 * T)
        nxt = self._sched(job, k + 1)
        p = self.profiles[job.server.idx]
        worker = job.worker_guid is not None
        jg, jn = (job.worker_guid, job.worker_name) if worker else (job.guid, job.name)
        jt = "ImmediateBackupCopyWorker" if worker else "BackupCopy"
        sessions = []
        js = self._session(rng, job, start, False, jg, jn, jt, "jobs")
        if rng.random() < 0.15 or k % 5 == 2:  # fails early; a retry copies for the rest of the interval
            js.end = trunc(start + int(rng.uniform(1, 6) * 3600 * T), js.prec)
            js.result, js.failure = FAILED, rng.choice(COPY_FAILURES)
            if worker:  # the 13.1 example: a failed worker session without FailureMessage
                js.failure = None
            sessions.append(js)
            rs = self._session(rng, job, js.end + 600 * T, True, jg, jn, jt, "jobs")
            rs.end = trunc(nxt - _rr(rng, 300 * T, 1800 * T), rs.prec)
            rs.result = WARNING if rng.random() < 0.3 else SUCCESS
            rs.failure = "1 of 5 restore points was not copied in this interval" if rs.result else None
            sessions.append(rs)
        else:
            js.end = trunc(nxt - _rr(rng, 300 * T, 1800 * T), js.prec)
            js.result = WARNING if rng.random() < 0.1 else SUCCESS
            js.failure = (
                "Some restore points were skipped: source backup is being written" if js.result else None
            )
            sessions.append(js)
        if worker:  # v12+: the copy job's own session spans the interval while its worker copies
            prng = random.Random(f"{self.seed}:cp:{job.idx}:{k}")
            ps = self._session(
                prng, job, start - _rr(prng, T, 20 * T), False, job.guid, job.name, job.job_type, "jobs"
            )
            ps.end = trunc(sessions[-1].end + _rr(prng, 5 * T, 60 * T), ps.prec)
            ps.result, ps.failure, ps.final_progress = sessions[-1].result, None, 0
            if ps.result == SUCCESS and p.tier == TIER_NEW:
                ps.failure = ""
            ps.visible_at, ps.open_state = ps.start, job.open_state
            self._push(ps.visible_at, ps, job.server)
        for s in sessions:
            s.visible_at = s.start
            s.open_state = "Working" if worker else job.open_state
            self._push(s.visible_at, s, job.server)
            if s.result == FAILED:
                continue
            n = job.pointed.get(0, 0)
            job.pointed[0] = n + 1
            rp = self._new_rp(rng, job.backup, s.end - _rr(rng, 60 * T, 300 * T))
            f = self._new_file(
                rng, job.backup, rp, p, job.name, rp.date + _rr(rng, T, 30 * T), n == 0, False, job.vms
            )
            self._push(rp.date, rp, job.server)
            self._push(f.created, f, job.server)

    # ---------------------------------------------------------------- time
    def _push(self, when: int, obj, server) -> None:
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

    def _reveal_one(self, obj) -> None:
        kind, index = obj.kind, self.index
        if kind == "BackupJobSession":
            si, ti, tasks = index["BackupJobSession"], index["BackupTaskSession"], self.tasks
            for js in (obj, *obj.children):
                self.sessions.append(js)
                si[js.guid] = js
                for t in js.tasks:
                    tasks.append(t)
                    ti[t.guid] = t
            if obj.end > obj.server.view:
                self._active.append(obj)
        elif kind == "VmRestorePoint":
            if not obj.rp.retired:
                self.vrps.append(obj)
                index["VmRestorePoint"][obj.guid] = obj
        elif kind == "AgentRestorePoint":
            if not obj.rp.retired:
                self.arps.append(obj)
                index["AgentRestorePoint"][obj.guid] = obj
        elif kind == "BackupFile":
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

    def import_backup(self, server, weeks: float, points: int) -> Backup:
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
        first = w.now_ticks - int(weeks * 7 * 86400 * T)
        for k in range(points):
            date = trunc(first + k * 86400 * T + _rr(rng, 3600 * T), 3)
            rp = self._new_rp(rng, b, date)
            f = self._new_file(rng, b, rp, p, name, date + 4 * T, k == 0, False, vms)
            for vm in vms:
                v = self._new_vrp(rng, rp, None, vm, date + _rr(rng, 60 * T, 600 * T))
                v.algorithm, v.point_type = ("Full", "Full") if k == 0 else ("Incremental", "Increment")
                v.file = f
                f.vrps.append(v)
                self._reveal_one(v)
            self._reveal_one(rp)
            self._reveal_one(f)
        return b

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
        self._generate(new)
        self._reveal(new)
        self._active = [js for js in self._active if js.end > js.server.view]
        self._retire(new)
        return changed

    # ---------------------------------------------------------------- state at now
    def js_state(self, js: Session) -> tuple[str, int | None, int, int | None]:
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

    def task_state(self, t: Task) -> tuple[str, int | None, int | None]:
        """(State, result index or None, end ticks or None) of a backup task session as EM shows it: a
        task in progress already reads Success on the servers that send VmUid, as the recorded one does
        (em-samples/query-task-inprogress-result-success.xml), None before it starts."""
        now = t.js.server.view
        if t.end <= now:
            return "Completed", t.result, t.end
        if t.work_start <= now:
            return "InProgress", SUCCESS if self.profiles[t.js.server.idx].vm_uid else None, None
        return "Pending", None, None

    def total_size(self, t: Task) -> int:
        """TotalSize: the VM's source size (0 once the task failed)."""
        return 0 if t.result == FAILED and t.end <= t.js.server.view else t.vm[2]

    def related_rps(self, js: Session) -> list[RestorePoint]:
        """The restore points a finished backup session links with Rel="Related": those of per-machine
        chains on servers from 12.1 on (em-samples/query-v12-copy-and-retry-sessions.xml); none on the
        others (the 13.1 reference examples have none, em-backup-side.md §1)."""
        if (
            js.rps
            and js.end <= js.server.view
            and self.profiles[js.server.idx].related
            and js.job.chain_per_vm
        ):
            return js.rps
        return []

    def related_vrp(self, t: Task) -> VmRestorePoint | None:
        """The VmRestorePoint a task links with Rel="Related" (servers from 12.1 on, finished tasks)."""
        if t.vrp is not None and t.end <= t.js.server.view and self.profiles[t.js.server.idx].related:
            return t.vrp
        return None

    def profile(self, o) -> Profile:
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
