"""What each run of a backup, copy, agent or file-share job makes: job and task sessions, restore
points, VM and agent restore points and backup files, each drawn from the run's own seeded stream
(`random.Random(f"{seed}:<kind>:{job}:{run}")`, so more time only adds the future).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence

from .clock import T, file_stamp, name_ts, sql_name, trunc
from .entities import (
    FAILED,
    SUCCESS,
    WARNING,
    AgentBackupJob,
    AgentRestorePoint,
    AnyJob,
    Backup,
    BackupFile,
    BackupJobSession,
    BackupServer,
    BackupTaskSession,
    Job,
    NasJob,
    Profile,
    RestorePoint,
    Vm,
    VmRestorePoint,
)
from .world import World, new_guid

PRECS = (0, 2, 3, 6, 7)
TIER_OLD, TIER_MID, TIER_NEW = 0, 1, 2
AGENT_OFFLINE = "Error: Unable to connect to the Veeam Agent on {name}: the host is not reachable"
NAS_FAILURES = (
    "Failed to process the file share: access is denied to \\\\{host}\\share",
    "1 of 3 file shares processed with warnings: some files were skipped because they are locked",
)
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

Made = BackupJobSession | RestorePoint | VmRestorePoint | AgentRestorePoint | BackupFile  # what a run makes
Push = Callable[[int, Made, BackupServer], None]


def rr(rng: random.Random, a: int, b: int | None = None) -> int:
    """`rng.randrange(a, b)` for the simulator's needs (uniform enough, several times cheaper)."""
    if b is None:
        a, b = 0, a
    return a + int(rng.random() * (b - a))


def _prec(rng: random.Random) -> int:
    return PRECS[int(rng.random() * 5)]


def ratio(x: float) -> str:
    """A ratio as EM writes it: invariant culture, at most two decimals, `1` not `1.00`."""
    return format(round(x, 2), "g")


# ---------------------------------------------------------------------- restore points and files
def new_restore_point(rng: random.Random, backup: Backup, date: int) -> RestorePoint:
    """A restore point of `backup` at `date` (ticks), named as SQL Server writes a date."""
    guid, prec = new_guid(rng), _prec(rng)
    date = trunc(date, prec)
    return RestorePoint(guid, backup, prec, date, sql_name(date))


def new_vm_restore_point(
    rng: random.Random,
    rp: RestorePoint,
    task: BackupTaskSession | None,
    vm: Vm,
    created: int,
    algorithm: str,
    point_type: str,
) -> VmRestorePoint:
    """A VM's slice of `rp` (added to it)."""
    guid, prec = new_guid(rng), _prec(rng)
    v = VmRestorePoint(guid, rp, task, vm, prec, trunc(created, prec), algorithm, point_type)
    rp.vrps.append(v)
    return v


def new_agent_restore_point(
    rng: random.Random,
    rp: RestorePoint,
    f: BackupFile,
    comp: Vm,
    created: int,
    full: bool,
    synthetic: bool,
) -> AgentRestorePoint:
    """An agent computer's point of `rp` (added to it), held in `f`."""
    guid, prec = new_guid(rng), _prec(rng)
    if full:
        algorithm, point_type = "Full", "Full"
    elif synthetic:
        algorithm, point_type = "SyntheticFull", "Full"
    else:
        algorithm, point_type = "Incremental", "Increment"
    a = AgentRestorePoint(guid, rp, f, comp, prec, trunc(created, prec), algorithm, point_type)
    rp.arps.append(a)
    return a


def new_backup_file(
    rng: random.Random,
    backup: Backup,
    rp: RestorePoint,
    p: Profile,
    chain_name: str,
    created: int,
    full: bool,
    per_vm: bool,
    vms: Iterable[Vm],
    ftype: str | None = None,
) -> BackupFile:
    """The file holding `rp` (added to it): a full (`vbk`) or an increment of `vms`, named after the
    chain and the server's local time (with a per-VM suffix on per-machine chains)."""
    guid, prec = new_guid(rng), _prec(rng)
    created = trunc(created, prec)
    ftype = ftype or ("vbk" if full else "vib")
    suffix = f"_{rng.getrandbits(16):04X}" if per_vm else ""
    name = f"{chain_name}D{file_stamp(created, p.tz)}{suffix}.{ftype}"
    folder = backup.repo.path if backup.repo is not None else "D:\\Imported\\{job}\\{file}"
    data = 0
    for vm in vms:
        used = vm.size * vm.used
        data += int(used if full else used * rng.uniform(0.01, 0.12))
    dedup = ratio(rng.uniform(1.2, 6.0) if full else rng.uniform(0.99, 1.6))
    compress = ratio(rng.uniform(1.2, 3.5))
    f = BackupFile(
        guid=guid,
        backup=backup,
        rp=rp,
        prec=prec,
        created=created,
        ftype=ftype,
        name=name,
        path=folder.format(job=backup.name, file=name),
        dedup=dedup,
        compress=compress,
        data_size=data,
        backup_size=int(data / (float(dedup) * float(compress))),
    )
    rp.files.append(f)
    return f


# ---------------------------------------------------------------------- runs
class Runs:
    """Generates the runs of the backup side's jobs up to an instant (`generate`), each once."""

    def __init__(
        self,
        w: World,
        profiles: Sequence[Profile],
        push: Push,
        backup_jobs: Sequence[Job],
        copy_jobs: Sequence[Job],
        agent_jobs: Sequence[AgentBackupJob],
        nas_jobs: Sequence[NasJob],
        offline_from: int,
    ):
        """`offline_from`: from then on the last computer of the first agent job (of two or more
        computers) is unreachable: its tasks fail."""
        self.w, self.seed, self.profiles, self.push = w, w.seed, profiles, push
        self.backup_jobs, self.copy_jobs = backup_jobs, copy_jobs
        self.agent_jobs, self.nas_jobs = agent_jobs, nas_jobs
        self.offline_from = offline_from

    def sched(self, job: AnyJob, k: int) -> int:
        """When run `k` of `job` is scheduled (ticks)."""
        return self.w.t0 + job.offset + k * job.period

    def generate(self, upto: int) -> None:
        """Make every run scheduled up to `upto` (ticks) that is not made yet."""
        for job in self.backup_jobs:
            while self.sched(job, job.next_k) <= upto:
                self._backup_run(job, job.next_k)
                job.next_k += 1
        for job in self.copy_jobs:
            while self.sched(job, job.next_k) <= upto:
                self._copy_run(job, job.next_k)
                job.next_k += 1
        for aj in self.agent_jobs:
            while self.sched(aj, aj.next_k) <= upto:
                self._agent_run(aj, aj.next_k)
                aj.next_k += 1
        for nj in self.nas_jobs:
            while self.sched(nj, nj.next_k) <= upto:
                self._nas_run(nj, nj.next_k)
                nj.next_k += 1

    # ---------------------------------------------------------------- sessions and tasks
    def _session(
        self,
        rng: random.Random,
        job: AnyJob,
        start: int,
        is_retry: bool,
        job_guid: str,
        job_name: str,
        job_type: str,
        job_seg: str,
    ) -> BackupJobSession:
        guid, prec = new_guid(rng), _prec(rng)
        start = trunc(start, prec)
        return BackupJobSession(
            guid=guid,
            job=job,
            server=job.server,
            is_retry=is_retry,
            job_guid=job_guid,
            job_name=job_name,
            job_type=job_type,
            job_seg=job_seg,
            prec=prec,
            start=start,
            name=f"{job_name}@{name_ts(start, rng.random() < 0.3)}",
        )

    def _tasks(
        self,
        rng: random.Random,
        js: BackupJobSession,
        vms: Iterable[Vm],
        fail_p: float,
        warn_p: float,
        slots: list[int],
        created: int,
    ) -> None:
        """One task session per VM of `vms`, each in the first free of `slots` (ticks)."""
        scale = self.w.scale
        for vm in vms:
            guid, prec = new_guid(rng), _prec(rng)
            created += rr(rng, T // 5, 2 * T)
            unit = 10 ** (7 - prec)
            slot = slots.index(min(slots))
            work_start = max(slots[slot], created) + rr(rng, T, 10 * T)
            r = rng.random()
            result = FAILED if r < fail_p else WARNING if r < warn_p else SUCCESS
            dur = rr(rng, 6 * 60 * T, 25 * 60 * T) // (3 if result == FAILED else 1)
            end = trunc(work_start + int(dur * scale) + T, prec)
            slots[slot] = end + rr(rng, T, 5 * T)
            if result == FAILED:
                reason = rng.choice(FAIL_REASONS).format(path=f"{js.job_name}\\{vm.name}.vib")
            else:
                reason = rng.choice(WARN_REASONS) if result == WARNING else ""
            created_at = -(-created // unit) * unit  # rounded up: never before the job session
            js.tasks.append(
                BackupTaskSession(guid, js, vm, prec, created_at, work_start, end, result, reason)
            )

    def _close(self, rng: random.Random, js: BackupJobSession, tasks: list[BackupTaskSession]) -> None:
        """End, result and failure message of a session from its tasks."""
        js.visible_at = max(t.created for t in tasks)
        js.end = trunc(max(t.end for t in tasks) + rr(rng, 5 * T, 30 * T), js.prec)
        js.result = max(t.result for t in tasks)
        js.failure = None
        if js.result != SUCCESS and rng.random() < 0.7:
            bad = next(t for t in tasks if t.result == js.result)
            nbad = sum(1 for t in tasks if t.result != SUCCESS)
            js.failure = (
                f"Processing {bad.vm.name} {bad.reason}"
                if rng.random() < 0.5
                else f"{nbad} of {len(tasks)} objects processed with {('warnings', 'errors')[js.result == FAILED]}"
            )
        elif js.result == SUCCESS and self.profiles[js.server.idx].tier == TIER_NEW:
            js.failure = ""  # newer servers send an empty <FailureMessage />

    # ---------------------------------------------------------------- runs per kind of job
    def _backup_run(self, job: Job, k: int) -> None:
        """A backup run, and a retry of the VMs that failed when there is time before the next."""
        rng = random.Random(f"{self.seed}:b:{job.idx}:{k}")
        start = self.sched(job, k) + rr(rng, 45 * T)
        js, points = self._backup_session(job, k, rng, start, range(len(job.vms)), False)
        failed = [t.vm for t in js.tasks if t.result == FAILED]
        runs = [(js, points)]
        if failed:
            idx = [job.vms.index(vm) for vm in failed]
            rstart = js.end + int(rng.uniform(5, 15) * 60 * T * self.w.scale)
            retry, rpoints = self._backup_session(job, k, rng, rstart, idx, True)
            if retry.end < self.sched(job, k + 1):  # no time left before the next run: no retry
                runs.append((retry, rpoints))
        for js, points in runs:
            self.push(js.visible_at, js, job.server)
            for when, obj in points:
                if obj.kind == "VmRestorePoint":
                    vm = obj.vm
                    job.pointed[vm.ref] = job.pointed.get(vm.ref, 0) + 1
                self.push(when, obj, job.server)

    def _backup_session(
        self, job: Job, k: int, rng: random.Random, start: int, vm_idx: Iterable[int], retry: bool
    ) -> tuple[BackupJobSession, list[tuple[int, Made]]]:
        """A backup session of the VMs `vm_idx` and what it makes: a restore point with a VM restore
        point per VM processed, in one file per run or, on per-machine chains, one per VM."""
        js = self._session(rng, job, start, retry, job.guid, job.name, "Backup", "jobs")
        slots = [js.start + rr(rng, 20 * T, 60 * T) for _ in range(4)]
        vms = job.vms
        fail_p, warn_p = (0.10, 0.18) if retry else (0.04, 0.11)
        self._tasks(rng, js, [vms[i] for i in vm_idx], fail_p, warn_p, slots, js.start)
        self._close(rng, js, js.tasks)
        ok = [t for t in js.tasks if t.result != FAILED]
        points: list[tuple[int, Made]] = []
        if not ok:
            return js, points
        p = self.profiles[job.server.idx]
        b = job.backup
        rp = new_restore_point(rng, b, js.start + rr(rng, T, 3 * T))
        points.append((rp.date, rp))
        js.rps.append(rp)
        synthetic = k % 7 == 6
        shared = None
        if not job.chain_per_vm:
            full = any(job.pointed.get(t.vm.ref, 0) == 0 for t in ok) or synthetic
            ftype = "vbk" if full else "vrb" if job.reverse else "vib"
            shared = new_backup_file(
                rng, b, rp, p, job.name, js.start + rr(rng, 2 * T, 6 * T), full, False,
                [t.vm for t in ok], ftype,
            )  # fmt: skip
            points.append((shared.created, shared))
        for t in ok:
            n = job.pointed.get(t.vm.ref, 0)
            if n == 0:
                algorithm, point_type = "Full", "Full"
            elif synthetic:
                algorithm, point_type = "SyntheticFull", "Full"
            elif job.reverse:
                algorithm, point_type = "ReversedIncremental", "ReverseIncrement"
            else:
                algorithm, point_type = "Incremental", "Increment"
            created = max(t.work_start, t.end - rr(rng, T, 20 * T))
            v = new_vm_restore_point(rng, rp, t, t.vm, created, algorithm, point_type)
            if shared is None:
                full = v.point_type == "Full"
                ftype = "vbk" if full else "vrb" if job.reverse else "vib"
                created = max(t.work_start, t.end - rr(rng, 5 * T, 40 * T))
                f = new_backup_file(rng, b, rp, p, job.name, created, full, True, [t.vm], ftype)
                points.append((t.end, f))
            else:
                f = shared
            v.file = f
            f.vrps.append(v)
            t.vrp = v
            points.append((t.end, v))
        return js, points

    def _copy_run(self, job: Job, k: int) -> None:
        """One copy interval: a session that copies for the whole interval, or one that fails early
        and its retry; on v12 and later also the copy job's own session around its worker's."""
        rng = random.Random(f"{self.seed}:c:{job.idx}:{k}")
        start = self.sched(job, k) + rr(rng, 60 * T)
        nxt = self.sched(job, k + 1)
        p = self.profiles[job.server.idx]
        if job.worker_guid is not None and job.worker_name is not None:
            worker = True
            jg, jn, jt = job.worker_guid, job.worker_name, "ImmediateBackupCopyWorker"
        else:
            worker = False
            jg, jn, jt = job.guid, job.name, "BackupCopy"
        sessions = []
        js = self._session(rng, job, start, False, jg, jn, jt, "jobs")
        if rng.random() < 0.15 or k % 5 == 2:  # fails early; a retry copies for the rest of the interval
            js.end = trunc(start + int(rng.uniform(1, 6) * 3600 * T), js.prec)
            js.result, js.failure = FAILED, rng.choice(COPY_FAILURES)
            if worker:  # the 13.1 example: a failed worker session without FailureMessage
                js.failure = None
            sessions.append(js)
            rs = self._session(rng, job, js.end + 600 * T, True, jg, jn, jt, "jobs")
            rs.end = trunc(nxt - rr(rng, 300 * T, 1800 * T), rs.prec)
            rs.result = WARNING if rng.random() < 0.3 else SUCCESS
            rs.failure = "1 of 5 restore points was not copied in this interval" if rs.result else None
            sessions.append(rs)
        else:
            js.end = trunc(nxt - rr(rng, 300 * T, 1800 * T), js.prec)
            js.result = WARNING if rng.random() < 0.1 else SUCCESS
            js.failure = (
                "Some restore points were skipped: source backup is being written" if js.result else None
            )
            sessions.append(js)
        if worker:  # v12+: the copy job's own session spans the interval while its worker copies
            prng = random.Random(f"{self.seed}:cp:{job.idx}:{k}")
            ps = self._session(
                prng, job, start - rr(prng, T, 20 * T), False, job.guid, job.name, job.job_type, "jobs"
            )
            ps.end = trunc(sessions[-1].end + rr(prng, 5 * T, 60 * T), ps.prec)
            ps.result, ps.failure, ps.final_progress = sessions[-1].result, None, 0
            if ps.result == SUCCESS and p.tier == TIER_NEW:
                ps.failure = ""
            ps.visible_at, ps.open_state = ps.start, job.open_state
            self.push(ps.visible_at, ps, job.server)
        for s in sessions:
            s.visible_at = s.start
            s.open_state = "Working" if worker else job.open_state
            self.push(s.visible_at, s, job.server)
            if s.result == FAILED:
                continue
            n = job.pointed.get(0, 0)
            job.pointed[0] = n + 1
            rp = new_restore_point(rng, job.backup, s.end - rr(rng, 60 * T, 300 * T))
            f = new_backup_file(
                rng, job.backup, rp, p, job.name, rp.date + rr(rng, T, 30 * T), n == 0, False, job.vms
            )
            self.push(rp.date, rp, job.server)
            self.push(f.created, f, job.server)

    def _agent_run(self, aj: AgentBackupJob, k: int) -> None:
        """An agent job run: its session, one per-computer child session with one task each, and a
        restore point, backup file and agent restore point per computer backed up."""
        rng = random.Random(f"{self.seed}:a:{aj.idx}:{k}")
        start = self.sched(aj, k) + rr(rng, 45 * T)
        parent = self._session(rng, aj, start, False, aj.guid, aj.name, "AgentBackup", "agents/jobs")
        p = self.profiles[aj.server.idx]
        children: list[BackupJobSession] = []
        points: list[tuple[int, Made]] = []
        for ci, comp in enumerate(aj.computers):
            cname = f"{aj.name} - {comp.name}"
            child = self._session(
                rng, aj, parent.start + rr(rng, T, 10 * T), False, comp.ref or "", cname, "AgentManagement",
                "agents/jobs",
            )  # fmt: skip
            child.parent = parent
            self._tasks(rng, child, [comp], 0.05, 0.12, [child.start + rr(rng, T, 5 * T)], child.start)
            t = child.tasks[0]
            if self._offline(aj, ci, child.start):
                t.result, t.reason = FAILED, AGENT_OFFLINE.format(name=comp.name)
                t.end = trunc(t.work_start + rr(rng, 60 * T, 300 * T), t.prec)
            self._close(rng, child, child.tasks)
            children.append(child)
            if t.result != FAILED:
                cb = aj.children[ci]
                n = aj.pointed.get(ci, 0)
                aj.pointed[ci] = n + 1
                rp = new_restore_point(rng, cb, child.start + rr(rng, T, 3 * T))
                created = max(t.work_start, t.end - rr(rng, 5 * T, 40 * T))
                f = new_backup_file(rng, cb, rp, p, f"{cb.name}_{ci + 1}", created, n == 0, False, [comp])
                a = new_agent_restore_point(
                    rng, rp, f, comp, max(t.work_start, created - rr(rng, T, 60 * T)), n == 0, k % 7 == 6
                )
                points += [(rp.date, rp), (t.end, f), (t.end, a)]
        parent.children = tuple(children)
        parent.visible_at = max(c.visible_at for c in children)
        parent.end = trunc(max(c.end for c in children) + rr(rng, 5 * T, 30 * T), parent.prec)
        parent.result = max(c.result for c in children)
        parent.failure = None
        if parent.result != SUCCESS:
            bad = sum(1 for c in children if c.result != SUCCESS)
            parent.failure = f"{bad} of {len(children)} computers processed with warnings or errors"
        self.push(parent.visible_at, parent, aj.server)
        for when, obj in points:
            self.push(when, obj, aj.server)

    def _offline(self, aj: AgentBackupJob, ci: int, start: int) -> bool:
        """Whether computer `ci` of `aj` was unreachable at `start`: the last computer of the first
        agent job (of two or more), from `offline_from` on."""
        return (
            aj.idx == 0
            and len(aj.computers) > 1
            and ci == len(aj.computers) - 1
            and start >= self.offline_from
        )

    def _nas_run(self, job: NasJob, k: int) -> None:
        """A file-share backup run: one BackupJobSession of JobType NasBackup, no task sessions (EM
        promises tasks for Backup and Agent sessions only) and no restore point object (EM has none
        for file shares: em-backup-side.md §12)."""
        rng = random.Random(f"{self.seed}:n:{job.idx}:{k}")
        start = self.sched(job, k) + rr(rng, 45 * T)
        js = self._session(rng, job, start, False, job.guid, job.name, "NasBackup", "nas/jobs")
        js.end = trunc(js.start + int(rr(rng, 3 * 60 * T, 40 * 60 * T) * self.w.scale) + T, js.prec)
        r = rng.random()
        js.result = FAILED if r < 0.05 else WARNING if r < 0.15 else SUCCESS
        js.failure = None
        if js.result != SUCCESS:
            js.failure = NAS_FAILURES[js.result - 1].format(host=f"fs{job.idx + 1:02d}.corp.lab.local")
        elif self.profiles[js.server.idx].tier == TIER_NEW:
            js.failure = ""
        js.visible_at = js.start
        self.push(js.visible_at, js, job.server)
