"""The completeness check: EM's counts against the warehouse's, per type, then backup server, then day
(or backup), and exactly what differs read again — in `run` on a schedule, and by hand with
`veeam-etl verify` (`--repair`)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select

from etl import db, pipeline, registry, schema, status
from etl.simulator import Faults, Simulator, World
from helpers import assert_equal_to_truth, cli


def _world(now: datetime, days: int = 3, **more) -> World:
    return World(
        seed=4, servers=2, jobs=2, vms_per_job=3, days=days, backup_jobs=2, now=now, running_share=0, **more
    )


def test_verify_by_hand_finds_what_the_warehouse_lost_and_repair_reloads_exactly_that(db_url):
    now = datetime.now(UTC).replace(microsecond=0)  # the window ends where the last run started
    world = _world(now)
    with Simulator(world) as sim:
        eng = db.engine(db_url)
        pipeline.run(eng, sim.url, "demo", "demo")
        quiet = cli("verify", "--url", sim.url, "--user", "demo", "--db", db_url)
        assert quiet.returncode == 0, quiet.stdout + quiet.stderr
        assert "0 windows differ" in quiet.stdout

        tasks = schema.backup_task_sessions
        with eng.begin() as conn:  # the warehouse loses one server's task sessions
            server = conn.execute(
                select(tasks.c.backup_server_uid).order_by(tasks.c.creation_time_utc.desc()).limit(1)
            ).scalar_one()
            gone = conn.execute(delete(tasks).where(tasks.c.backup_server_uid == server)).rowcount
        found = cli("verify", "--url", sim.url, "--user", "demo", "--db", db_url)
        assert found.returncode == 1, found.stdout + found.stderr
        lines = [ln for ln in found.stdout.splitlines() if "BackupTaskSession" in ln]
        # the loss, found per day on that server only (the other server's counts agree)
        assert lines and sum(int(ln.split()[-1]) for ln in lines) == gone
        assert "--repair" in found.stdout

        repaired = cli("verify", "--url", sim.url, "--user", "demo", "--db", db_url, "--repair")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        assert "repair load" in repaired.stdout and f"{gone} rows reloaded" in repaired.stdout
        assert "0 windows differ" in repaired.stdout.rsplit("verify", 1)[-1]
        assert_equal_to_truth(eng, world.truth())
        eng.dispose()


def test_run_checks_completeness_when_due_and_reloads_exactly_the_row_it_lost(db_url):
    now = datetime.now(UTC).replace(microsecond=0)
    world = _world(now)
    with Simulator(world) as sim:
        first = cli("run", "--url", sim.url, "--user", "demo", "--db", db_url)
        assert first.returncode == 0, first.stderr
        assert "completeness check:" in first.stdout  # every full load checks
        eng = db.engine(db_url)
        points, tasks = schema.vm_restore_points, schema.backup_task_sessions
        named = select(tasks.c.vm_restore_point_uid).where(tasks.c.vm_restore_point_uid.is_not(None))
        with eng.begin() as conn:  # the warehouse loses one VM restore point (nothing names it)
            lost = conn.execute(
                select(points.c.uid)
                .where(points.c.uid.not_in(named))
                .order_by(points.c.creation_time_utc.desc())
                .limit(1)
            ).scalar_one()
            conn.execute(delete(points).where(points.c.uid == lost))

        quiet = cli("run", "--url", sim.url, "--user", "demo", "--db", db_url)
        assert quiet.returncode == 0, quiet.stderr
        assert "completeness check" not in quiet.stdout  # checked an hour ago at most: not due
        with eng.connect() as conn:
            assert conn.scalar(select(points.c.uid).where(points.c.uid == lost)) is None

        again = cli("run", "--url", sim.url, "--user", "demo", "--db", db_url, "--verify-hours", "0")
        assert again.returncode == 0, again.stderr
        assert "1 differed, 1 rows reloaded" in again.stdout, again.stdout
        with eng.connect() as conn:
            assert conn.scalar(select(points.c.uid).where(points.c.uid == lost)) == lost
            run = conn.execute(select(schema.etl_runs).order_by(schema.etl_runs.c.id.desc()).limit(1)).one()
        # the same run found and reloaded it, and recorded what it compared
        assert (run.verify_differing, run.verify_reloaded) == (1, 1)
        assert run.verify_compared > len(registry.incremental()) and run.verify_requests > 0
        assert run.rows_inserted == 1
        shown = cli("status", "--db", db_url)
        assert f"completeness checked by run {run.id} (succeeded)" in shown.stdout
        assert "1 differed, 1 rows reloaded" in shown.stdout
        data = json.loads(cli("status", "--db", db_url, "--json").stdout)
        assert data["sources"][0]["last_check"]["reloaded"] == 1
        assert_equal_to_truth(eng, world.truth())
        checked = status.collect(eng)["runs"]
        assert [r["verify_compared"] is not None for r in checked] == [True, False, True]
        eng.dispose()


def test_the_check_settings_reach_the_run_from_a_flag_and_an_estate_key():
    from etl import cli as cli_mod
    from etl import estate, settings

    opts = settings.options({"verify_hours": 0.0, "verify_days": 2.5})
    assert (opts.verify_hours, opts.verify_days) == (0.0, 2.5)
    assert settings.options({}).verify_hours == 24.0 and settings.options({}).verify_days == 7.0
    flags = {p.opts[0] for p in cli_mod.run.params}
    assert {"--verify-hours", "--verify-days"} <= flags
    assert {"verify_hours", "verify_days"} <= set(estate.OVERRIDE_FLAGS)


class _OneEmptyAnswer(Faults):
    """EM answers the first query for backup task sessions as if it held none (a transient empty
    answer: PagesCount 0, nothing to page on); every later request, counts included, is answered
    whole."""

    NOTHING = 'BackupServerUid=="urn:veeam:BackupServer:00000000-0000-0000-0000-000000000000"'

    def __init__(self):
        super().__init__()
        self.hidden = 0

    def intercept(self, ctx):
        entities = ctx.kind == "query" and ctx.query.get("format", "").lower() == "entities"
        if entities and ctx.query.get("type") == "BackupTaskSession" and not self.hidden:
            self.hidden += 1
            asked = ctx.query.get("filter")
            ctx.query["filter"] = f"({asked});{self.NOTHING}" if asked else self.NOTHING
        return None


def test_a_full_load_checks_what_it_read_back_to_ems_oldest_row_and_reloads_what_an_empty_answer_hid(db_url):
    now = datetime.now(UTC).replace(microsecond=0)
    world = _world(now, days=10)
    old = [
        t
        for t in world.truth()["backup_task_sessions"].values()
        if t["creation_time_utc"] < now - timedelta(days=8)
    ]
    assert old  # rows a check of the last --verify-days (7) alone would never count
    faults = _OneEmptyAnswer()
    with Simulator(world, faults=faults) as sim:
        first = cli("run", "--url", sim.url, "--user", "demo", "--db", db_url)
        assert first.returncode == 0, first.stderr
        assert faults.hidden == 1
        eng = db.engine(db_url)
        assert_equal_to_truth(eng, world.truth())
        with eng.connect() as conn:
            run = conn.execute(select(schema.etl_runs)).one()
        assert run.verify_reloaded >= len(old) and run.verify_differing > 0
        eng.dispose()


class _Unreadable(Faults):
    """EM serves one backup task session unreadable (its CreationTimeUTC an impossible date) in its
    first `times` query answers that carry it (None: in every one); the loader quarantines it."""

    def __init__(self, guid: str, times: int | None = None):
        super().__init__()
        self.times = times
        self.pattern = re.compile(
            rb'(UID="urn:veeam:BackupTaskSession:'
            + guid.encode()
            + rb'".*?<CreationTimeUTC>)(\d{4})-\d\d-\d\d',
            re.S | re.I,
        )

    def transform(self, ctx, status, headers, body):
        status, headers, body = super().transform(ctx, status, headers, body)
        if ctx.kind == "query" and status == 200 and self.times != 0:
            body, n = self.pattern.subn(rb"\g<1>\g<2>-02-30", body, count=1)
            if n and self.times is not None:
                self.times -= 1
            if "Content-Length" in headers:
                headers = {**headers, "Content-Length": str(len(body))}
        return status, headers, body


class _UnreadableOldest(_Unreadable, _OneEmptyAnswer):
    """`_OneEmptyAnswer`, and EM's oldest backup task session unreadable in every answer: the check's
    oldest-first page of one cannot bound the history before the window with it."""


def test_an_old_row_unreadable_once_in_a_full_load_is_read_again_by_its_check(db_url):
    now = datetime.now(UTC).replace(microsecond=0)
    world = _world(now, days=12)
    tasks = world.truth()["backup_task_sessions"].values()
    old = sorted(
        (t for t in tasks if t["creation_time_utc"] < now - timedelta(days=9)),
        key=lambda t: t["creation_time_utc"],
    )
    target = old[3]["uid"]  # not the oldest: the check's bound reads
    with Simulator(world, faults=_Unreadable(target.rsplit(":", 1)[-1], times=1)) as sim:
        first = cli("run", "--url", sim.url, "--user", "demo", "--db", db_url)
        assert first.returncode == 0, first.stderr
        assert "quarantined" in first.stderr  # loudly, as it was unreadable when read
        eng = db.engine(db_url)
        with eng.connect() as conn:
            run = conn.execute(select(schema.etl_runs)).one()
            loaded = conn.scalar(
                select(schema.backup_task_sessions.c.uid).where(schema.backup_task_sessions.c.uid == target)
            )
        assert loaded == target and run.verify_reloaded > 0  # the same run found it and read it again
        eng.dispose()


@pytest.mark.parametrize("unreadable_oldest", [False, True])
def test_a_full_refresh_finds_old_rows_it_lacks_although_it_keeps_history_em_purged(
    db_url, unreadable_oldest
):
    real_now = datetime.now(UTC).replace(microsecond=0)
    world = _world(real_now - timedelta(days=5), days=20, history_days=15)
    with Simulator(world) as sim:
        first = cli("run", "--url", sim.url, "--user", "demo", "--db", db_url)
        assert first.returncode == 0, first.stderr
        world.advance(
            timedelta(days=5)
        )  # EM purges its sessions older than 15 days; the warehouse keeps them
        eng = db.engine(db_url)
        tasks = schema.backup_task_sessions
        listed = set(world.truth()["backup_task_sessions"])
        oldest = min(world.truth()["backup_task_sessions"].values(), key=lambda t: t["creation_time_utc"])
        with eng.begin() as conn:
            rows = conn.execute(
                select(tasks.c.uid, tasks.c.backup_server_uid, tasks.c.creation_time_utc)
            ).all()
            purged = [r.uid for r in rows if r.uid not in listed]
            old = [
                r
                for r in rows
                if r.uid in listed
                and r.uid != oldest["uid"]
                and r.creation_time_utc < real_now - timedelta(days=9)
            ]
            lost = [r.uid for r in old if r.backup_server_uid == old[0].backup_server_uid][:5]
            conn.execute(delete(tasks).where(tasks.c.uid.in_(lost)))
        assert purged and len(lost) == 5  # the warehouse is long overall, and short on one server

        faults = (
            _UnreadableOldest(oldest["uid"].rsplit(":", 1)[-1]) if unreadable_oldest else _OneEmptyAnswer()
        )
        sim.faults = faults
        again = cli("run", "--url", sim.url, "--user", "demo", "--db", db_url, "--full-refresh")
        assert again.returncode == 0, again.stderr
        assert faults.hidden == 1
        with eng.connect() as conn:
            back = set(conn.scalars(select(tasks.c.uid).where(tasks.c.uid.in_(lost))))
            kept = conn.scalar(select(func.count()).select_from(tasks).where(tasks.c.uid.in_(purged)))
        assert back == set(lost) and kept == len(purged)  # found and read again; history kept
        eng.dispose()
