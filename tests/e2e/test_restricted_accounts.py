"""Restricted accounts (em-api.md, "Roles: what an account may read"): EM answers 403 to what the
account's role may not read. A refused query type is skipped with one warning naming it and the EM
role that reads it, recorded in the run and shown by `status`; the rest loads and the run exits 0.
A refused link is handled like a 404 (the parent recorded from the link). A refused type is never
swept and keeps its watermarks. A 403 at logon stays an authentication failure. Real simulator,
real socket."""

from __future__ import annotations

import copy
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from etl import db, pipeline, registry, runs, schema
from etl.simulator import Faults, Simulator, World
from helpers import assert_equal_to_truth, cli, dump

SIZE = {"servers": 2, "jobs": 2, "backup_jobs": 2, "vms_per_job": 3, "days": 2}
JOB_ROLE = registry.JOB.role
JOB_TYPES = [t.name for t in registry.TYPES.values() if t.role == JOB_ROLE]  # Job, AgentBackupJob, NasJob


class Seen(Faults):
    """Records (status, path) of every answer the simulator gives."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.answers: list[tuple[int, str]] = []

    def transform(self, ctx, status, headers, body):
        self.answers.append((status, ctx.path))
        return super().transform(ctx, status, headers, body)


def refused_of_runs(eng) -> list[list[dict] | None]:
    with eng.connect() as conn:
        rows = conn.scalars(select(schema.etl_runs.c.refused).order_by(schema.etl_runs.c.id)).all()
    return [json.loads(r) if r else None for r in rows]


def without_jobs(truth: dict) -> tuple[dict, dict, set[str]]:
    """The truth of a load that could not read jobs: every table but jobs as it is, except that no
    backup or replica can be given its job; the truth's jobs; and the jobs the sessions name."""
    rest = copy.deepcopy(truth)
    jobs = rest.pop("jobs")
    for table in ("backups", "replicas"):
        for row in rest[table].values():
            row["job_uid"] = None
    named = {
        s["job_uid"]
        for table in ("backup_job_sessions", "replica_job_sessions")
        for s in rest[table].values()
        if s.get("job_uid")
    }
    return rest, jobs, named


def test_a_portal_user_loads_everything_but_jobs_with_one_warning_per_refused_type(db_url):
    world = World(seed=31, **SIZE)
    with Simulator(world) as sim:
        sim.add_account("viewer", "view-pw", "PortalUser")
        done = cli("run", "--url", sim.url, "--user", "viewer", "--db", db_url, password="view-pw")
        assert done.returncode == 0, done.stderr
        warnings = [line for line in done.stderr.splitlines() if "EM refused" in line]
        assert len(warnings) == len(JOB_TYPES), warnings  # one per refused type, links to them included
        for type_name in JOB_TYPES:
            (line,) = [w for w in warnings if f"type={type_name} " in w]
            assert f"needs the EM role {JOB_ROLE}" in line and "HTTP 403" in line
        assert f"refused by EM (HTTP 403), skipped: Job (needs the EM role {JOB_ROLE})" in done.stdout

        eng = db.engine(db_url)
        rest, _, named = without_jobs(world.truth())
        assert_equal_to_truth(eng, rest)
        jobs = dump(eng)["jobs"]
        assert set(jobs) == named and all(row["placeholder"] for row in jobs.values())
        assert refused_of_runs(eng) == [[{"type": name, "role": JOB_ROLE} for name in JOB_TYPES]]

        status = cli("status", "--db", db_url)
        assert status.returncode == 0, status.stderr
        expected = "refused by EM (HTTP 403), skipped: " + ", ".join(
            f"{name} (needs the EM role {JOB_ROLE})" for name in JOB_TYPES
        )
        assert status.stdout.count(expected) == 2  # under the source's latest run and under the run
        as_json = json.loads(cli("status", "--db", db_url, "--json").stdout)
        assert as_json["runs"][0]["refused"][0] == {"type": "Job", "role": JOB_ROLE}

        # an account that may read jobs later completes the warehouse
        admin = cli("run", "--url", sim.url, "--user", "demo", "--db", db_url)
        assert admin.returncode == 0, admin.stderr
        assert "EM refused" not in admin.stderr
        assert_equal_to_truth(eng, world.truth())
        assert refused_of_runs(eng)[-1] is None
        eng.dispose()


def test_a_403_on_a_job_link_records_the_job_from_the_link(db_url):
    world = World(seed=32, **SIZE)
    seen = Seen()
    with Simulator(world, faults=seen) as sim:
        sim.add_account("viewer", "view-pw", "PortalUser")
        eng = db.engine(db_url)
        summary = pipeline.run(eng, sim.url, "viewer", "view-pw", options=pipeline.Options(page_size=25))
        assert summary.status == "succeeded"
        refused_links = {path for status, path in seen.answers if status == 403 and "/query" not in path}
        assert refused_links and all("jobs/" in path for path in refused_links)
        _, truth_jobs, named = without_jobs(world.truth())
        jobs = dump(eng)["jobs"]
        assert set(jobs) == named
        for uid, row in jobs.items():
            assert row["placeholder"] is True and row["href"], uid  # uid, href and name from the link
            if uid in truth_jobs and not truth_jobs[uid]["placeholder"]:
                assert row["name"] == truth_jobs[uid]["name"]
        assert summary.parents_from_links >= len(named)
        sessions = dump(eng)["backup_job_sessions"]  # the children loaded, naming their jobs
        assert sessions and all(s["job_uid"] in jobs for s in sessions.values())
        eng.dispose()


def test_a_refused_type_is_never_swept_and_keeps_its_watermarks(db_url):
    world = World(seed=33, retention_days=1.5, **SIZE)
    with Simulator(world) as sim:
        sim.add_account("narrow", "narrow-pw", "PortalUser", refused={"Backup", "RestorePoint"})
        eng = db.engine(db_url)
        pipeline.run(eng, sim.url, "demo", "demo")
        with eng.connect() as conn:
            marks = runs.watermarks(conn, "narrow")
            before = runs.watermarks(conn, pipeline.source_name(sim.url))
        assert marks == {}
        world.advance(timedelta(days=1))  # new points; the oldest retire from EM
        gone_before = {t: _deleted(eng, t) for t in ("backups", "restore_points")}
        narrow = pipeline.run(eng, sim.url, "narrow", "narrow-pw", options=pipeline.Options(sweep=True))
        assert narrow.status == "succeeded"
        assert narrow.refused == {"Backup": registry.BACKUP.role, "RestorePoint": registry.RESTORE_POINT.role}
        assert "backups" not in narrow.swept and "restore_points" not in narrow.swept
        assert {t: _deleted(eng, t) for t in gone_before} == gone_before  # nothing marked deleted
        assert narrow.swept["vm_restore_points"]["deleted"] > 0  # what it may read is swept
        with eng.connect() as conn:
            after = runs.watermarks(conn, pipeline.source_name(sim.url))
        assert after["RestorePoint"] == before["RestorePoint"]
        assert after["VmRestorePoint"] != before["VmRestorePoint"]

        full = pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(sweep=True))
        assert full.refused == {}
        truth = world.truth()  # the refused types, read again, equal what EM lists now
        assert_equal_to_truth(eng, {t: truth[t] for t in ("backups", "restore_points")}, retired=True)
        eng.dispose()


def _deleted(eng, table: str) -> set[str]:
    t = schema.table(table)
    with eng.connect() as conn:
        return set(conn.scalars(select(t.c.uid).where(t.c.deleted_at.is_not(None))))


class RefusePage2(Faults):
    """EM refuses page 2 of the restore point query (a role change while the run reads)."""

    def intercept(self, ctx):
        q = ctx.query
        if ctx.kind == "query" and (q.get("type", "").lower(), q.get("page")) == ("restorepoint", "2"):
            return ctx.sim.access_denied()
        return super().intercept(ctx)


def test_a_type_refused_part_way_keeps_its_watermarks(tmp_path):
    world = World(seed=34, **SIZE)
    with Simulator(world, faults=RefusePage2()) as sim:
        eng = db.engine(f"sqlite:///{tmp_path}/w.db")
        summary = pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=5))
        assert summary.refused == {"RestorePoint": registry.RESTORE_POINT.role}
        with eng.connect() as conn:
            marks = runs.watermarks(conn, pipeline.source_name(sim.url))
        assert "RestorePoint" not in marks and "VmRestorePoint" in marks
        eng.dispose()


def test_a_vm_restore_operator_loads_what_it_may_read_and_runs_again(tmp_path):
    world = World(seed=35, **SIZE)
    with Simulator(world) as sim:
        sim.add_account("restorer", "restore-pw", "VMRestoreOperator")
        eng = db.engine(f"sqlite:///{tmp_path}/w.db")
        first = pipeline.run(eng, sim.url, "restorer", "restore-pw")
        refused = {"BackupServer", "BackupJobSession", "BackupTaskSession", *JOB_TYPES}
        assert set(first.refused) == refused
        got = dump(eng)
        truth = world.truth()
        assert set(got["backup_servers"]) == set(truth["backup_servers"])  # recorded from links
        assert all(row["placeholder"] for row in got["backup_servers"].values())
        assert got["backup_job_sessions"] == {} and got["backup_task_sessions"] == {}
        for table in ("restore_points", "vm_restore_points", "backup_files", "replica_task_sessions"):
            assert set(got[table]) == set(truth[table]), table
        world.advance(timedelta(hours=12))
        second = pipeline.run(eng, sim.url, "restorer", "restore-pw")
        assert second.mode == "incremental" and set(second.refused) == refused
        truth = world.truth()
        got = dump(eng)
        for table in ("restore_points", "vm_restore_points", "backup_files", "replica_task_sessions"):
            assert set(got[table]) == set(truth[table]), table  # one window for every server
        pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(sweep=True))
        assert_equal_to_truth(eng, world.truth(), retired=True)
        eng.dispose()


class RefuseLogon(Faults):
    def intercept(self, ctx):
        if ctx.kind == "logon" and ctx.method == "POST":
            return ctx.sim.access_denied()
        return super().intercept(ctx)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_logon_fails_the_run_clearly(status, tmp_path):
    faults = RefuseLogon() if status == 403 else None
    with Simulator(World(seed=36, servers=1, jobs=1, days=1), faults=faults) as sim:
        done = cli(
            "run",
            "--url",
            sim.url,
            "--user",
            "demo",
            "--db",
            f"sqlite:///{tmp_path}/w.db",
            password="not-the-password",
        )
    assert done.returncode == 1, done.stderr
    assert f"refused the logon of user 'demo' (HTTP {status})" in done.stderr
    why = "wrong user name or password" if status == 401 else "no EM role that may use the REST API"
    assert why in done.stderr and "Traceback" not in done.stderr
