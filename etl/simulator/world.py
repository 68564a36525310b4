"""The seeded estate of a simulated Enterprise Manager, its clock and its replication side: backup
servers, replication jobs with their sessions, tasks and replica points, what EM lists at `now`, and
time (`advance`, collection lag, history retention); the backup side is built and advanced with it.
"""

from __future__ import annotations

import heapq
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from .clock import T, from_ticks, name_ts, span, to_ticks, trunc
from .entities import (
    FAILED,
    RESULTS,
    SUCCESS,
    WARNING,
    BackupServer,
    ReplicaJobSession,
    ReplicaTaskSession,
    ReplicatedVm,
    ReplicationEntity,
    ReplicationJob,
    VmReplicaPoint,
)

if TYPE_CHECKING:
    from .backup import BackupSide
    from .entities import Backup, BackupEntity, EmObject

PRECS = (0, 3, 6, 7, 7)

SEGMENT = {
    "BackupServer": "backupServers",
    "ReplicaJobSession": "replicaSessions",
    "ReplicaTaskSession": "replicaTaskSessions",
    "VmReplicaPoint": "vmReplicaPoints",
}

JOB_PREFIXES = (
    "Fileserver",
    "SQL",
    "Exchange",
    "Web Farm ",
    "Domain Controllers ",
    "R&D Lab ",
    "ERP",
    "Citrix",
    "File & Print ",
    "Dev",
)
VM_PATTERNS = (
    "srv{:02d}",
    "sql-{:02d}",
    "web{:02d}",
    "dc{:02d}",
    "app-{:02d}",
    "exch{:02d}",
    "fs{:02d}",
    "vm-{:03d}",
)
VERSIONS = ("12.1.2.172", "12.0.0.1420", "11.0.1.1261", "12.2.0.334", "10.0.1.4854")
# Server i runs SERVER_VERSIONS[i % 5]: any three servers show every API generation (see backup.Profile).
SERVER_VERSIONS = ("12.1.2.172", "11.0.1.1261", "10.0.1.4854", "12.2.0.334", "12.0.0.1420")
V13 = "13.0.1.2067"  # the version of the recorded v13 backup server (em-samples/backup-server-v13.xml)
# Session states VBR records beyond those the EM reference lists (em-api.md "Values are open sets").
# All but Postprocessing are shown before processing starts; Postprocessing after the last VM.
EXTRA_STATES = (
    "WaitingRepository",
    "WaitingSlot",
    "Pending",
    "Idle",
    "WaitingTape",
    "ActionRequired",
    "Postprocessing",
)
DESCRIPTIONS = ("", "", "Primary site backup server", "DR site (Amsterdam)", "Branch office <B1> & lab")
SIZES_GIB = (3, 16, 40, 60, 60, 80, 100, 127, 250, 500, 1024, 2048)
FAIL_REASONS = (
    "Error: Failed to create VM snapshot. Timed out waiting for snapshot creation",
    "Error: Cannot connect to host esx03.lab.local: The operation has timed out",
    "Error: Not enough storage on datastore 'Speicher-Ü1' to complete replica",
    "Error: Exception from HRESULT: 0x80070057 (E_INVALIDARG) <retry 3/3>",
)
WARN_REASONS = (
    "Changed block tracking cannot be enabled: one or more VM snapshots exist",
    "Guest processing skipped: credentials for 'LAB\\svc_veeam' & domain not found",
    "Unable to truncate Microsoft SQL Server transaction logs",
    "VM is running on a snapshot; replica consistency is crash-consistent only",
)


def new_guid(rng: random.Random) -> str:
    n = rng.getrandbits(128)
    n = (n & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
    n = (n & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass
class Quirks:
    """Switchable EM behaviours; the defaults look like a current EM with its documented oddities."""

    misspelled_hrefs: bool = True  # task-session Hrefs use Veeam's `/api/repicaTaskSessions/{id}`
    related_links: bool = True  # task sessions link `Related` to their VmReplicaPoint
    bom: bool = False  # bodies start with a UTF-8 byte-order mark
    xml_declaration: bool = True  # bodies start with `<?xml version="1.0" encoding="utf-8"?>`
    shuffle_attributes: bool = False  # attribute order varies per entity (seeded)
    prefixed_namespace: bool = False  # `<v:Root xmlns:v=...>` instead of a default namespace
    unknown_elements: bool = False  # some entities carry an unknown `<Extra>x</Extra>` element
    vm_name: bool = True  # points carry `VmName` (newer servers)
    parents_only_by_link: bool = False  # ~8% of job sessions only reachable through their `Up` link
    deleted_server: bool = False  # the last backup server is gone (404) but its sessions remain
    deleted_point: bool = False  # ~4% of replica points are gone (404) but tasks still link them
    public_origin: str | None = None  # origin written into every Href, e.g. "http://em01.lab.local:9399"
    # Half of the job sessions spend part of their run in a VBR state the EM reference does not list
    # (EXTRA_STATES: `WaitingRepository` … before processing, `Postprocessing` after), Result=None.
    extra_states: bool = False
    # Backup server index -> hours: EM collects that server's sessions and points this late (it shows
    # the server as it was that long ago), with their original CreationTimeUTC. em-api.md "Collection
    # lag per backup server". `World.set_collection_lag()` changes it while the world runs.
    collection_lag_hours: dict[int, float] = field(default_factory=dict)
    # Backup server versions, by index (cycled); empty = SERVER_VERSIONS by index. A server of version 13
    # or later is shaped like em-samples/backup-server-v13.xml (Port 443, WcfPort, certificate
    # thumbprint) and its task sessions carry `VmUid`; earlier ones carry neither.
    server_versions: tuple[str, ...] = ()
    # An empty query answer is `<Entities />` with PagesCount="0" and no paging links
    # (em-samples/query-empty-entities.xml) instead of an empty plural wrapper on page 1 of 1
    # (em-samples/query-empty-list.xml).
    bare_empty_results: bool = False
    # Backup side: older backup servers answer as their version does (backup.Profile); False: all
    # answer like the newest.
    version_quirks: bool = True
    # EM collects while a client pages (em-api.md, "EM changes while it is read"): before answering
    # each query page, EM's clock moves this many minutes (new sessions arrive, retention removes
    # the oldest points, history retention purges the oldest sessions). Deterministic: the world
    # moves by request, not by wall time. None: the clock moves only when told (`advance`).
    collecting_minutes: float | None = None
    # EM compares `BackupServerUid` with the bare GUID: a filter naming a backup server by its urn
    # matches nothing and answers an empty result, not an error (em-api.md: the form is undocumented).
    misread_server_filter: bool = False


Listener = Callable[[set[str]], None]  # called with the GUIDs whose rendering changed
Revealable = ReplicaJobSession | VmReplicaPoint  # what happens at an instant and EM then lists


class World:
    """The estate at instant `now`; `advance()` moves time forward under `lock`.

    Every session is drawn from `random.Random(f"{seed}:{job}:{run}")`, so advancing time only adds
    the future; `truth()` is exactly what a complete crawl should leave in the warehouse."""

    def __init__(
        self,
        seed: int = 1,
        servers: int = 3,
        jobs: int = 6,
        vms_per_job: int = 10,
        days: int = 14,
        runs_per_day: int = 2,
        now: datetime = datetime(2025, 8, 15, 12, 0, tzinfo=UTC),
        quirks: Quirks | None = None,
        running_share: float = 0.3,
        backup_jobs: int = 6,
        agent_jobs: int = 2,
        copy_jobs: int = 2,
        agent_computers: int = 3,
        retention_days: float | None = None,
        nas_jobs: int = 1,
        history_days: float | None = None,
    ):
        """`running_share`: the share of jobs whose newest run started minutes before `now` and is
        still running (the first job always is), on top of the runs that happen to overlap `now`;
        0.3 gives tests plenty of running sessions, 0 is a steady estate.

        Backup side (`self.backup`, see backup.py): `backup_jobs` backup jobs of `vms_per_job` VMs run
        `runs_per_day` times a day like the replication jobs; `copy_jobs` backup copy jobs (each
        copies one backup job; one session per 2-day interval); `agent_jobs` agent backup jobs of
        `agent_computers` computers each (the last computer of the first job has been unreachable for
        two days); `nas_jobs` file-share backup jobs. `retention_days`: restore points, VM and agent
        restore points, backup files and VM replica points older than this disappear from EM as time
        advances (None: kept). `history_days`: EM's session history retention (13 weeks by default in
        EM): job sessions (with their task sessions) that started longer ago are purged as time
        advances (None: kept)."""
        self.seed, self.quirks = seed, quirks or Quirks()
        self.history = None if history_days is None else int(history_days * 86400 * T)
        self.removed: set[str] = set()  # uids EM listed and no longer does (purged, retired)
        self.running_share = running_share
        self.lock = threading.RLock()
        self.origin = "http://localhost:9399"  # set by the Simulator serving this world; used by truth()
        self.generation = 0  # counts the changes of what EM lists (query caches compare it)
        self._listeners: list[Listener] = []
        self._now = to_ticks(now)
        self.period = int(86400 * T / max(1, runs_per_day))  # ticks between two runs of a job
        self.t0 = self._now - days * 86400 * T  # where the history starts
        waves = -(-vms_per_job // 4)
        self.scale = min(1.0, 0.5 * self.period / (waves * 25 * 60 * T + 1))  # task durations shrink to fit
        self.servers = [self._make_server(i) for i in range(max(1, servers))]
        if self.quirks.deleted_server:
            self.servers[-1].deleted = True
        for i, hours in self.quirks.collection_lag_hours.items():
            self.servers[i].lag = int(hours * 3600 * T)
        for s in self.servers:
            s.view = self._now - s.lag
        # server index -> heap of what happened but EM has not collected yet
        self._pending: dict[int, list[tuple[int, int, Revealable]]] = {}
        self.jobs = [self._make_job(j, vms_per_job) for j in range(jobs)]
        self.job_sessions: list[ReplicaJobSession] = []
        self.tasks: list[ReplicaTaskSession] = []
        self.points: list[VmReplicaPoint] = []
        # what EM lists, by kind and GUID
        self.index: dict[str, dict[str, ReplicationEntity]] = {k: {} for k in SEGMENT}
        for s in self.servers:
            if not s.deleted:
                self.index["BackupServer"][s.guid] = s
        self._heap: list[tuple[int, int, Revealable]] = []  # (when, sequence, what): the future
        self._seq = 0
        self._active: list[ReplicaJobSession] = []  # sessions still running at their server's view
        self._generate(self._now)
        self._reveal(self._now)
        from .backup import BackupSide

        self.backup: BackupSide = BackupSide(
            self, backup_jobs, agent_jobs, copy_jobs, agent_computers, retention_days, vms_per_job, nas_jobs
        )
        self._purge()

    # ---------------------------------------------------------------- construction
    def _make_server(self, i: int) -> BackupServer:
        rng = random.Random(f"{self.seed}:server:{i}")
        guid = new_guid(rng)
        description = "" if i % 3 == 1 else rng.choice(DESCRIPTIONS[2:])
        rng.choice(VERSIONS)  # drawn to keep the seeded stream: the version is SERVER_VERSIONS[i % 5]
        version = SERVER_VERSIONS[i % len(SERVER_VERSIONS)]
        port, wcf_port = 9392, 9401 if i % 2 == 0 else None
        thumbprint = f"{rng.getrandbits(160):040X}" if i % 2 == 0 else None
        v13 = False
        versions = self.quirks.server_versions
        if versions:
            version = versions[i % len(versions)]
            v13 = int(version.split(".", 1)[0]) >= 13
            if v13:
                port, wcf_port = 443, 9405
                thumbprint = thumbprint or f"{random.Random(f'{self.seed}:cert:{i}').getrandbits(160):040X}"
            else:
                wcf_port = thumbprint = None
        return BackupServer(
            idx=i,
            guid=guid,
            name=f"vbr{i + 1:02d}.lab.local",
            description=description,
            port=port,
            version=version,
            wcf_port=wcf_port,
            thumbprint=thumbprint,
            vcenter=new_guid(random.Random(f"{self.seed}:vcenter:{i}")),
            v13=v13,
        )

    def _make_job(self, j: int, nvms: int) -> ReplicationJob:
        rng = random.Random(f"{self.seed}:job:{j}")
        server, guid = self.servers[j % len(self.servers)], new_guid(rng)
        name = f"{rng.choice(JOB_PREFIXES)}{j + 1:02d} Replication"
        names: set[str] = set()
        vms: list[ReplicatedVm] = []
        while len(vms) < nvms:
            vm = rng.choice(VM_PATTERNS).format(rng.randrange(1, 100 if len(names) < 60 else 1000))
            if vm not in names:
                names.add(vm)
                vms.append(ReplicatedVm(vm, new_guid(rng), rng.choice(SIZES_GIB) * 2**30))
        running = j == 0 or rng.random() < self.running_share
        if running:  # newest run started a few minutes before the initial now: still working
            last = self._now - int(rng.uniform(2.0, 4.0) * 60 * T * self.scale) - 45 * T
            offset = (last - self.t0) % self.period
        else:
            offset = rng.randrange(self.period)
        return ReplicationJob(j, server, guid, name, tuple(vms), offset)

    def _sched(self, job: ReplicationJob, k: int) -> int:
        """When run `k` of `job` is scheduled (ticks)."""
        return self.t0 + job.offset + k * self.period

    def _generate(self, upto: int) -> None:
        for job in self.jobs:
            while self._sched(job, job.next_k) <= upto:
                for js in self._gen_run(job, job.next_k):
                    self._push(js.visible_at, js)
                job.next_k += 1

    def _gen_run(self, job: ReplicationJob, k: int) -> list[ReplicaJobSession]:
        """Run `k` of `job`: its session, and a retry of the VMs that failed when there is time."""
        rng = random.Random(f"{self.seed}:{job.idx}:{k}")
        start = self._sched(job, k) + rng.randrange(45 * T)
        js = self._gen_session(job, k, rng, start, list(range(len(job.vms))), False)
        failed = [t.vm for t in js.tasks if t.result == FAILED]
        if not failed:
            return [js]
        rstart = js.end + int(rng.uniform(5, 15) * 60 * T * self.scale)
        pointed = set(job.pointed)
        retry = self._gen_session(job, k, rng, rstart, failed, True)
        if retry.end >= self._sched(job, k + 1):  # no time left before the next run: no retry
            job.pointed = pointed
            return [js]
        return [js, retry]

    def _gen_session(
        self, job: ReplicationJob, k: int, rng: random.Random, start: int, vms: list[int], retry: bool
    ) -> ReplicaJobSession:
        guid, prec = new_guid(rng), rng.choice(PRECS)
        start = trunc(start, prec)
        js = ReplicaJobSession(
            guid=guid,
            job=job,
            k=k,
            is_retry=retry,
            prec=prec,
            start=start,
            name=f"{job.name}@{name_ts(start, rng.random() < 0.2)}",
            hidden=rng.random() < 0.08 and self.quirks.parents_only_by_link,
        )
        fail_p, warn_p = (0.10, 0.15) if retry else (0.03, 0.07)
        slots = [js.start + rng.randrange(20 * T, 60 * T) for _ in range(4)]
        created, tasks = js.start, js.tasks
        for vm in vms:
            guid, prec = new_guid(rng), rng.choice(PRECS)
            created += rng.randrange(T // 5, 2 * T)
            created_at = -(-created // 10 ** (7 - prec)) * 10 ** (7 - prec)  # rounded up: never before js
            slot = min(range(4), key=slots.__getitem__)
            work_start = max(slots[slot], created) + rng.randrange(T, 10 * T)
            r = rng.random()
            result = FAILED if r < fail_p else WARNING if r < warn_p else SUCCESS
            dur = rng.randrange(8 * 60 * T, 25 * 60 * T) // (3 if result == FAILED else 1)
            end = trunc(work_start + int(dur * self.scale), prec)
            slots[slot] = end + rng.randrange(T, 5 * T)
            reasons = FAIL_REASONS if result == FAILED else WARN_REASONS if result == WARNING else None
            reason = rng.choice(reasons) if reasons else ""
            name = f"{job.vms[vm].name}@{name_ts(created_at, False)}"
            t = ReplicaTaskSession(guid, js, vm, prec, created_at, work_start, end, result, reason, name)
            deleted = rng.random() < 0.04
            if t.result != FAILED:
                guid, prec = new_guid(rng), rng.choice(PRECS)
                p_created = trunc(t.end - rng.randrange(T, 20 * T), prec)
                algorithm, point_type = (
                    ("Incremental", "Increment") if vm in job.pointed else ("Full", "Full")
                )
                name = f"{job.vms[vm].name}@{name_ts(p_created, False)}"
                deleted = deleted and self.quirks.deleted_point
                t.point = VmReplicaPoint(guid, t, prec, p_created, algorithm, point_type, name, deleted)
                job.pointed.add(vm)
            tasks.append(t)
        js.visible_at = max(t.created for t in tasks)
        js.end = trunc(max(t.end for t in tasks) + rng.randrange(5 * T, 30 * T), js.prec)
        js.result = max(t.result for t in tasks)
        js.extra = self._extra_state(js) if self.quirks.extra_states else None
        nbad = sum(1 for t in tasks if t.result != SUCCESS)
        if js.result != SUCCESS and rng.random() < 0.7:
            bad = next(t for t in tasks if t.result == js.result)
            js.failure = (
                f"Processing {job.vms[bad.vm].name} {bad.reason}"
                if rng.random() < 0.5
                else f"{nbad} of {len(tasks)} VMs processed with {RESULTS[js.result].lower()}s"
            )
        return js

    def _extra_state(self, js: ReplicaJobSession) -> tuple[str, int, int] | None:
        """(state, from, until) in ticks: when the session reports a state of EXTRA_STATES."""
        if not self.quirks.extra_states:
            return None
        h = int(js.guid[:8], 16)  # from the guid: the world's random streams stay as they were
        if h % 2:
            return None
        name = EXTRA_STATES[(h >> 1) % len(EXTRA_STATES)]
        span = js.end - js.start
        if name == "Postprocessing":
            return name, js.end - span * (10 + (h >> 4) % 20) // 100, js.end
        return name, js.start, js.start + span * (20 + (h >> 4) % 30) // 100

    # ---------------------------------------------------------------- time
    def _push(self, when: int, obj: Revealable) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, obj))

    def _reveal(self, upto: int) -> None:
        """Make visible what happened up to `upto`, each object once EM has collected it from its
        backup server (`server.view`)."""
        heap, pending = self._heap, self._pending
        if not pending and not any(s.lag for s in self.servers):  # every view is `upto`: no waiting
            sessions, tasks, points, active = self.job_sessions, self.tasks, self.points, self._active
            js_idx, task_idx, point_idx = (self.index[k] for k in SEGMENT if k != "BackupServer")
            pop, push = heapq.heappop, self._push
            while heap and heap[0][0] <= upto:
                obj = pop(heap)[2]
                if obj.kind == "ReplicaJobSession":
                    sessions.append(obj)
                    js_idx[obj.guid] = obj
                    for t in obj.tasks:
                        tasks.append(t)
                        task_idx[t.guid] = t
                        if t.point is not None and not t.point.deleted:
                            push(t.end, t.point)
                    if obj.end > upto:
                        active.append(obj)
                else:
                    points.append(obj)
                    point_idx[obj.guid] = obj
            return
        while True:
            while heap and heap[0][0] <= upto:
                item = heapq.heappop(heap)
                obj = item[2]
                srv = obj.job.server if obj.kind == "ReplicaJobSession" else obj.task.js.job.server
                if item[0] <= srv.view:
                    self._admit(obj)
                else:
                    heapq.heappush(pending.setdefault(srv.idx, []), item)
            moved = False
            for idx, waiting in pending.items():
                view = self.servers[idx].view
                while waiting and waiting[0][0] <= view:
                    self._admit(heapq.heappop(waiting)[2])
                    moved = True
            if not moved:
                return

    def _admit(self, obj: Revealable) -> None:
        if obj.kind == "ReplicaJobSession":
            self.job_sessions.append(obj)
            self.index["ReplicaJobSession"][obj.guid] = obj
            idx = self.index["ReplicaTaskSession"]
            for t in obj.tasks:
                self.tasks.append(t)
                idx[t.guid] = t
                if t.point is not None and not t.point.deleted:
                    self._push(t.end, t.point)
            if obj.end > obj.job.server.view:
                self._active.append(obj)
        else:
            self.points.append(obj)
            self.index["VmReplicaPoint"][obj.guid] = obj

    @property
    def now(self) -> datetime:
        return from_ticks(self._now)

    @property
    def now_ticks(self) -> int:
        return self._now

    def add_listener(self, callback: Listener) -> None:
        """`callback(changed_guids: set[str])` runs (under the lock) after every advance."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Listener) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def advance(self, delta: timedelta) -> set[str]:
        """Move `now` forward; returns the guids of already-visible entities whose rendering changed."""
        with self.lock:
            return self._move(self._now + span(delta))

    def set_collection_lag(self, server: int, hours: float) -> set[str]:
        """From now on EM collects backup server `server` (index) `hours` late. EM never forgets what
        it collected: raising the lag freezes its view of that server until `now - lag` passes it
        (the server delivers nothing meanwhile); lowering it delivers everything up to `now - lag` at
        once. Returns the guids whose rendering changed, like `advance`."""
        with self.lock:
            self.servers[server].lag = int(hours * 3600 * T)
            return self._move(self._now)

    def _move(self, new: int) -> set[str]:
        changed: set[str] = set()
        for js in self._active:
            changed.add(js.guid)
            changed.update(t.guid for t in js.tasks)
        self._now = new
        for s in self.servers:
            s.view = max(s.view, new - s.lag)
        self._generate(new)
        self._reveal(new)
        self._active = [js for js in self._active if js.end > js.job.server.view]
        changed |= self.backup.advance(new)
        self._purge()
        self.generation += 1
        for cb in self._listeners:
            cb(changed)
        return changed

    def _purge(self) -> None:
        """EM's history retention: job sessions (and their task sessions) that started more than
        `history` before their backup server's view are no longer listed."""
        if self.history is None:
            return
        old = [js for js in self.job_sessions if js.start < js.job.server.view - self.history]
        if old:
            gone = {id(js) for js in old}
            for js in old:
                self.index["ReplicaJobSession"].pop(js.guid, None)
                self.removed.add(js.uid)
                for t in js.tasks:
                    self.index["ReplicaTaskSession"].pop(t.guid, None)
                    self.removed.add(t.uid)
            self.job_sessions[:] = [js for js in self.job_sessions if id(js) not in gone]
            self.tasks[:] = [t for t in self.tasks if id(t.js) not in gone]
        self.backup.purge(self.history)

    def collect_while_paging(self) -> None:
        """A query page is about to be answered: with `quirks.collecting_minutes`, EM's clock moves first."""
        if self.quirks.collecting_minutes:
            self.advance(timedelta(minutes=self.quirks.collecting_minutes))

    def import_backup(self, server: int = 0, weeks: float = 3.0, points: int = 3) -> Backup:
        """A backup imported on backup server `server` (index): named `<job>_imported`, without a
        repository link, its restore points, VM restore points and backup files dated `weeks` before
        now (em-api.md, "EM changes while it is read"; VBR guide, importing_backups.html). Listed at
        once, whatever the watermarks of a client say. Returns the simulator's Backup."""
        with self.lock:
            backup = self.backup.import_backup(self.servers[server], weeks, points)
            self.generation += 1
            for cb in self._listeners:
                cb(set())
            return backup

    # ---------------------------------------------------------------- state at now
    def js_state(self, js: ReplicaJobSession) -> tuple[str, int | None, int, int | None]:
        """(State, result index or None, progress, end ticks or None) of a job session as EM shows it
        at now (as of its backup server's last collection)."""
        now = js.job.server.view
        if js.end <= now:
            return "Stopped", js.result, 100, js.end
        done = sum(1 for t in js.tasks if t.end <= now)
        extra = js.extra
        state = extra[0] if extra is not None and extra[1] <= now < extra[2] else "Working"
        return state, None, min(99, done * 100 // len(js.tasks)), None

    def task_state(self, t: ReplicaTaskSession) -> tuple[str, int | None, int | None]:
        """(State, result index or None, end ticks or None) of a task session as EM shows it at now."""
        now = t.js.job.server.view
        if t.end <= now:
            return "Completed", t.result, t.end
        return ("InProgress" if t.work_start <= now else "Pending"), None, None

    def related_point(self, t: ReplicaTaskSession) -> VmReplicaPoint | None:
        """The point a task links to with Rel="Related" (None when the quirk is off or not yet made)."""
        if self.quirks.related_links and t.point is not None and t.end <= t.js.job.server.view:
            return t.point
        return None

    def vm_uid(self, t: ReplicaTaskSession) -> str | None:
        """`VmUid` of a task session: only from backup servers of version 13 or later."""
        srv = t.js.job.server
        if not srv.v13:
            return None
        moref = int(t.js.job.vms[t.vm].guid[:8], 16) % 900_000 + 1000
        return f"urn:VMware:Vm:{srv.vcenter}.vm-{moref}"

    def find(self, kind: str, guid: str) -> EmObject | None:
        """The object of EM type `kind` that EM lists under `guid` (lower case); None: none."""
        index: dict[str, ReplicationEntity] | dict[str, BackupEntity] | None = self.index.get(kind)
        if index is None:
            index = self.backup.index[kind]
        return index.get(guid)

    def visible_servers(self) -> list[BackupServer]:
        return [s for s in self.servers if not s.deleted]

    def queryable_job_sessions(self) -> list[ReplicaJobSession]:
        if self.quirks.parents_only_by_link:
            return [js for js in self.job_sessions if not js.hidden]
        return self.job_sessions

    # ---------------------------------------------------------------- hrefs, truth, stats
    def href(self, kind: str, guid: str, entity: bool, origin: str | None = None) -> str:
        """The Href EM gives a replication-side object (entity form with `?format=Entity`)."""
        seg = SEGMENT[kind]
        if kind == "ReplicaTaskSession" and self.quirks.misspelled_hrefs:
            seg = "repicaTaskSessions"
        base = (self.quirks.public_origin or origin or self.origin).rstrip("/")
        return f"{base}/api/{seg}/{guid}" + ("?format=Entity" if entity else "")

    def truth(self, origin: str | None = None) -> dict[str, dict[str, dict]]:
        """Warehouse rows after a complete crawl, keyed by UID per table (hrefs use `origin`)."""
        from .truth import build_truth

        with self.lock:
            return build_truth(self, origin)

    def truth_deleted(self, origin: str | None = None) -> dict[str, set[str]]:
        """{table: uids} of rows in `truth()` that a complete crawl at now must show with `deleted_at`
        set: placeholders of objects EM no longer lists (retired or deleted restore points, VM
        restore points, backup files, VM replica points) in the tables retention applies to."""
        from .truth_backup import deleted

        return deleted(self.truth(origin))

    def stats(self) -> dict[str, int]:
        """How many of each object EM lists (and a few counts tests size their checks by)."""
        with self.lock:
            return {
                "backup_servers": len(self.visible_servers()),
                "replica_job_sessions": len(self.job_sessions),
                "replica_task_sessions": len(self.tasks),
                "vm_replica_points": len(self.points),
                "running_job_sessions": sum(1 for js in self.job_sessions if js.end > js.job.server.view),
                "retry_job_sessions": sum(1 for js in self.job_sessions if js.is_retry),
                "hidden_job_sessions": sum(1 for js in self.job_sessions if js.hidden),
                "deleted_points": sum(
                    1 for t in self.tasks if (p := self.related_point(t)) is not None and p.deleted
                ),
                **self.backup.stats(),
            }
