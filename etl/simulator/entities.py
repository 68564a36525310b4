"""The objects of a simulated estate: one slotted dataclass per EM type (`kind`, `guid`, `uid`), plus
what the simulator keeps for itself (a replication job's schedule, a server's `Profile`, VMs).
Instants are ticks (clock.py), results indexes into RESULTS; only generation code creates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal, NamedTuple

from .clock import name_ts

RESULTS = ("Success", "Warning", "Failed")
SUCCESS, WARNING, FAILED = 0, 1, 2


class Entity:
    """What every EM object has: its type, its GUID and its UID. Subclasses are dataclasses with
    `eq=False` (objects are nodes of a graph: equal only to themselves) and `repr=False` (this one)."""

    __slots__ = ()
    kind: ClassVar[str]
    guid: str

    @property
    def uid(self) -> str:
        return f"urn:veeam:{self.kind}:{self.guid}"

    def __repr__(self) -> str:
        return f"<{self.kind} {self.guid}>"


class ReplicatedVm(NamedTuple):
    """A VM a replication job includes."""

    name: str
    guid: str
    size: int  # bytes


class Vm(NamedTuple):
    """A VM (or agent computer) a backup job includes."""

    name: str
    ref: str | None  # HierarchyObjRef (a computer: its GUID; a replication job's VM: None)
    size: int  # source size, bytes
    used: float  # share of `size` in use (what a full backup reads)


# ---------------------------------------------------------------------- the replication side
@dataclass(slots=True, eq=False, repr=False)
class BackupServer(Entity):
    kind: ClassVar[Literal["BackupServer"]] = "BackupServer"
    idx: int
    guid: str
    name: str
    description: str
    port: int
    version: str
    wcf_port: int | None
    thumbprint: str | None
    vcenter: str  # GUID of the vCenter its VMware VMs' refs name
    v13: bool = False  # shaped like a version 13 server (em-samples/backup-server-v13.xml)
    deleted: bool = False  # EM no longer lists it (404), its sessions remain
    lag: int = 0  # ticks EM collects this server late (em-api.md "Collection lag per backup server")
    view: int = 0  # ticks: EM has collected this server up to here


@dataclass(slots=True, eq=False)
class ReplicationJob:
    """A replication job as the replication side runs it (EM lists it as a `Job` of JobType Replica)."""

    idx: int
    server: BackupServer
    guid: str
    name: str
    vms: tuple[ReplicatedVm, ...]
    offset: int  # ticks from the world's t0 to its first run
    next_k: int = 0  # the next run not yet generated
    pointed: set[int] = field(default_factory=set)  # VMs (by index) that have a replica point


@dataclass(slots=True, eq=False, repr=False)
class ReplicaJobSession(Entity):
    kind: ClassVar[Literal["ReplicaJobSession"]] = "ReplicaJobSession"
    guid: str
    job: ReplicationJob
    k: int  # the run of its job it belongs to
    is_retry: bool
    prec: int  # fractional digits EM shows of its times
    start: int
    name: str
    hidden: bool  # listed by no query: only reachable through its tasks' `Up` link
    tasks: list[ReplicaTaskSession] = field(default_factory=list)
    end: int = 0
    result: int = SUCCESS
    failure: str | None = None
    visible_at: int = 0  # when EM lists it: once its last task session is created
    extra: tuple[str, int, int] | None = None  # (State, from, until): a state EM's docs do not list


@dataclass(slots=True, eq=False, repr=False)
class ReplicaTaskSession(Entity):
    kind: ClassVar[Literal["ReplicaTaskSession"]] = "ReplicaTaskSession"
    guid: str
    js: ReplicaJobSession
    vm: int  # index into the job's VMs
    prec: int
    created: int
    work_start: int
    end: int
    result: int
    reason: str
    name: str
    point: VmReplicaPoint | None = None

    @property
    def vm_name(self) -> str:
        return self.js.job.vms[self.vm].name


@dataclass(slots=True, eq=False, repr=False)
class VmReplicaPoint(Entity):
    kind: ClassVar[Literal["VmReplicaPoint"]] = "VmReplicaPoint"
    guid: str
    task: ReplicaTaskSession
    prec: int
    created: int
    algorithm: str
    point_type: str
    name: str
    deleted: bool  # gone from EM (404) while its task still links it


# ---------------------------------------------------------------------- the backup side
@dataclass(slots=True, eq=False)
class Profile:
    """How one backup server answers, decided by its version (backup.server_tier)."""

    server: BackupServer
    tier: int
    vm_uid: bool  # task sessions carry VmUid
    related: bool  # `Related` links from sessions to restore points and from tasks to VM restore points
    vm_names: bool  # VM restore points carry VmName
    typed_lists: bool  # list links are typed right (older servers swap two)
    file_link: bool  # VM restore points link `Up` to their backup file
    immediate_copy: bool  # its copy jobs are ImmediateBackupCopy (12 and later)
    tz: int  # hours from UTC of its local time
    vcenter: str
    hyperv_host: str
    repos: list[Repository] = field(default_factory=list)
    vm_seq: int = 0  # VMs numbered so far
    agent_seq: int = 0  # agent computers numbered so far


@dataclass(slots=True, eq=False, repr=False)
class Repository(Entity):
    kind: ClassVar[Literal["Repository"]] = "Repository"
    guid: str
    name: str
    server: BackupServer
    rkind: str  # `Kind` as EM sends it
    path: str  # a format string of {job} and {file}
    capacity: int  # bytes, -1 unknown
    free_base: float  # free space: a triangle wave of these (BackupSide.free_space)
    free_amp: float
    phase: float
    rate: float


@dataclass(slots=True, eq=False, repr=False)
class Job(Entity):
    """A job EM lists under /jobs (Backup, Replica, BackupCopy, ImmediateBackupCopy)."""

    kind: ClassVar[Literal["Job"]] = "Job"
    idx: int
    guid: str
    name: str
    server: BackupServer
    job_type: str
    platform: str
    description: str
    sched_configured: bool
    sched_enabled: bool
    vms: tuple[Vm, ...]
    offset: int
    period: int  # ticks between runs
    retain: int  # restore points to keep
    repo: Repository | None = None  # where its backup is (None: a replication job)
    chain_per_vm: bool = False
    reverse: bool = False  # reverse incremental
    repl: ReplicationJob | None = None  # the replication side's job, for a Replica job
    source: Job | None = None  # the backup job a copy job copies
    worker_guid: str | None = None  # an immediate copy job's worker "job" (EM answers 404 for it)
    worker_name: str | None = None
    open_state: str | None = None  # a copy job's State while its interval is open
    next_k: int = 0
    pointed: dict[str | int | None, int] = field(default_factory=dict)  # restore points per VM ref
    backup: Backup = field(init=False)  # set once its backup exists (backup and copy jobs)


@dataclass(slots=True, eq=False, repr=False)
class AgentBackupJob(Entity):
    """An agent backup job (/agents/jobs); its sessions reference it as `urn:veeam:Job:{guid}`."""

    kind: ClassVar[Literal["AgentBackupJob"]] = "AgentBackupJob"
    job_type: ClassVar[str] = "AgentBackup"
    sched_configured: ClassVar[bool] = True
    sched_enabled: ClassVar[bool] = True
    idx: int
    guid: str
    name: str
    server: BackupServer
    platform: str
    description: str
    computers: tuple[Vm, ...]
    offset: int
    period: int
    next_k: int = 0
    pointed: dict[str | int | None, int] = field(default_factory=dict)  # restore points per computer
    backup: Backup = field(init=False)  # the parent backup
    children: list[Backup] = field(default_factory=list)  # one child backup per computer


@dataclass(slots=True, eq=False, repr=False)
class NasJob(Entity):
    """A file-share backup job (/nas/jobs, `<NASJob Type="NasJob">`): no JobType or Platform in the
    entity; its sessions (JobType NasBackup) reference it as `urn:veeam:Job:{guid}`."""

    kind: ClassVar[Literal["NasJob"]] = "NasJob"
    job_type: ClassVar[None] = None
    platform: ClassVar[None] = None
    sched_configured: ClassVar[bool] = True
    sched_enabled: ClassVar[bool] = True
    idx: int
    guid: str
    name: str
    server: BackupServer
    description: str
    shares: tuple[tuple[str, str, str], ...]  # (ObjectInJobId, file server GUID, path)
    offset: int
    period: int
    next_k: int = 0


AnyJob = Job | AgentBackupJob | NasJob  # what a backup job session runs under


@dataclass(slots=True, eq=False, repr=False)
class BackupJobSession(Entity):
    kind: ClassVar[Literal["BackupJobSession"]] = "BackupJobSession"
    guid: str
    job: AnyJob
    server: BackupServer
    is_retry: bool
    job_guid: str  # JobUid's GUID: the job's, a copy worker's or an agent computer's
    job_name: str
    job_type: str
    job_seg: str  # the path under /api of its job's collection
    prec: int
    start: int
    name: str
    tasks: list[BackupTaskSession] = field(default_factory=list)
    end: int = 0
    result: int = SUCCESS
    failure: str | None = None
    visible_at: int = 0
    parent: BackupJobSession | None = None  # an agent job's session, of a per-computer session
    children: tuple[BackupJobSession, ...] = ()  # an agent job session's per-computer sessions
    open_state: str | None = None  # a copy session's State while its interval is open
    final_progress: int = 100  # Progress once Stopped: 100, but 0 for a v12 copy parent (em-samples)
    rps: list[RestorePoint] = field(default_factory=list)  # linked `Related` on newer servers


@dataclass(slots=True, eq=False, repr=False)
class BackupTaskSession(Entity):
    kind: ClassVar[Literal["BackupTaskSession"]] = "BackupTaskSession"
    guid: str
    js: BackupJobSession
    vm: Vm
    prec: int
    created: int
    work_start: int
    end: int
    result: int
    reason: str
    vrp: VmRestorePoint | None = None

    @property
    def name(self) -> str:
        return f"{self.vm.name}@{name_ts(self.created, False)}"


@dataclass(slots=True, eq=False, repr=False)
class Backup(Entity):
    kind: ClassVar[Literal["Backup"]] = "Backup"
    guid: str
    name: str
    server: BackupServer
    repo: Repository | None  # None: imported
    btype: str  # BackupType: Standard, ParentBackup, ChildBackup
    platform: str
    job: AnyJob | None  # None: its job was deleted, or imported
    job_guid: str
    parent: Backup | None = None
    children: list[Backup] = field(default_factory=list)
    imported: bool = False


@dataclass(slots=True, eq=False, repr=False)
class RestorePoint(Entity):
    kind: ClassVar[Literal["RestorePoint"]] = "RestorePoint"
    guid: str
    backup: Backup
    prec: int
    date: int
    name: str
    vrps: list[VmRestorePoint] = field(default_factory=list)
    arps: list[AgentRestorePoint] = field(default_factory=list)
    files: list[BackupFile] = field(default_factory=list)
    retired: bool = False  # retention removed it (with its VM and agent restore points and files)


@dataclass(slots=True, eq=False, repr=False)
class VmRestorePoint(Entity):
    kind: ClassVar[Literal["VmRestorePoint"]] = "VmRestorePoint"
    guid: str
    rp: RestorePoint
    task: BackupTaskSession | None
    vm: Vm
    prec: int
    created: int
    algorithm: str = ""
    point_type: str = ""
    file: BackupFile | None = None

    @property
    def name(self) -> str:
        return f"{self.vm.name}@{name_ts(self.created, False)}"


@dataclass(slots=True, eq=False, repr=False)
class AgentRestorePoint(Entity):
    """An agent computer's restore point (em-backup-side.md §10): `<computer>@<time>`, no VmName or
    HierarchyObjRef; `Up` links to its restore point, backup file and backup server."""

    kind: ClassVar[Literal["AgentRestorePoint"]] = "AgentRestorePoint"
    guid: str
    rp: RestorePoint
    file: BackupFile
    comp: Vm
    prec: int
    created: int
    algorithm: str
    point_type: str

    @property
    def name(self) -> str:
        return f"{self.comp.name}@{name_ts(self.created, False)}"


@dataclass(slots=True, eq=False, repr=False)
class BackupFile(Entity):
    kind: ClassVar[Literal["BackupFile"]] = "BackupFile"
    guid: str
    backup: Backup
    rp: RestorePoint
    prec: int
    created: int
    ftype: str  # vbk, vib, vrb
    name: str
    path: str
    dedup: str  # ratios as EM writes them
    compress: str
    data_size: int
    backup_size: int
    vrps: list[VmRestorePoint] = field(default_factory=list)


@dataclass(slots=True, eq=False, repr=False)
class Replica(Entity):
    kind: ClassVar[Literal["Replica"]] = "Replica"
    guid: str
    job: Job
    name: str
    server: BackupServer
    repo: Repository
    platform: str


ReplicationEntity = BackupServer | ReplicaJobSession | ReplicaTaskSession | VmReplicaPoint
BackupEntity = (
    Job
    | AgentBackupJob
    | NasJob
    | BackupJobSession
    | BackupTaskSession
    | Repository
    | Backup
    | RestorePoint
    | VmRestorePoint
    | AgentRestorePoint
    | BackupFile
    | Replica
)
EmObject = ReplicationEntity | BackupEntity  # what EM serves
