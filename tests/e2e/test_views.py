"""The reporting views (sql/) on SQLite and PostgreSQL: hand-made scenarios, and the simulator's ground
truth loaded into the warehouse compared with expectations computed here in plain Python.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text, update

import helpers
from etl import db, pipeline, registry, report, schema, views
from etl.report.read import instant
from etl.simulator import Quirks, Simulator, World

PUBLIC_VIEWS = {
    "v_replica_job_runs": [
        "job_uid",
        "job_name",
        "backup_server_uid",
        "backup_server_name",
        "session_uid",
        "session_name",
        "creation_time_utc",
        "end_time_utc",
        "day_utc",
        "duration_s",
        "state",
        "result",
        "is_retry",
        "failure_message",
        "tasks",
        "tasks_success",
        "tasks_warning",
        "tasks_failed",
        "tasks_running",
        "tasks_other",
        "total_bytes",
    ],
    "v_replica_job_daily": [
        "job_uid",
        "job_name",
        "backup_server_uid",
        "backup_server_name",
        "day_utc",
        "runs",
        "sessions",
        "retries",
        "successes",
        "warnings",
        "failures",
        "recovered",
        "running",
        "other",
        "final_result",
        "success_rate",
    ],
    "v_vm_replica_status": [
        "backup_server_uid",
        "backup_server_name",
        "vm_display_name",
        "tasks",
        "last_task_start_utc",
        "last_task_state",
        "last_task_result",
        "last_result",
        "last_result_utc",
        "last_success_utc",
        "replica_points",
        "newest_point_utc",
        "rpo_hours",
        "hours_since_success",
        "rpo_breach",
        "rpo_status",
    ],
    "v_replica_source_size_daily": [
        "backup_server_uid",
        "backup_server_name",
        "day_utc",
        "tasks",
        "tasks_success",
        "tasks_warning",
        "tasks_failed",
        "tasks_other",
        "source_bytes",
        "source_bytes_ok",
    ],
    "v_replica_transfer_daily": [
        "backup_server_uid",
        "backup_server_name",
        "day_utc",
        "tasks",
        "tasks_success",
        "tasks_warning",
        "tasks_failed",
        "bytes",
        "bytes_ok",
    ],
    "v_replica_failures": [
        "task_uid",
        "occurred_utc",
        "creation_time_utc",
        "end_time_utc",
        "result",
        "reason",
        "vm_display_name",
        "backup_server_uid",
        "backup_server_name",
        "job_uid",
        "job_name",
        "job_session_uid",
        "session_name",
        "is_retry",
        "later_success",
    ],
}
GIB = 2**30


# ---------------------------------------------------------------------- a warehouse to write into
class Warehouse(helpers.Warehouse):
    """A migrated warehouse with terse helpers to add replication rows."""

    def _meta(self) -> dict:
        return self.meta()

    def server(self, name: str = "vbr01", **kw) -> str:
        return self.add(schema.backup_servers, name=name, placeholder=False, **kw)

    def session(
        self,
        server: str,
        job: str,
        start: datetime | None,
        end: datetime | None,
        result: str,
        retry: bool = False,
        **kw,
    ) -> str:
        job_uid = self.ensure(
            schema.jobs, f"urn:veeam:Job:{job}", name=f"{job} Replication", job_type="Replica"
        )
        kw.setdefault("state", "Working" if result == "None" else "Stopped")
        return self.add(
            schema.replica_job_sessions,
            backup_server_uid=server,
            job_uid=job_uid,
            job_name=f"{job} Replication",
            job_type="Replica",
            name=f"{job}@{start}",
            creation_time_utc=start,
            end_time_utc=end,
            result=result,
            is_retry=retry,
            placeholder=False,
            **kw,
        )

    def task(
        self,
        session: str,
        server: str,
        vm: str,
        start: datetime,
        end: datetime | None,
        result: str,
        size: int = GIB,
        reason: str | None = None,
        **kw,
    ) -> str:
        kw.setdefault("state", "InProgress" if result == "None" else "Completed")
        return self.add(
            schema.replica_task_sessions,
            job_session_uid=session,
            backup_server_uid=server,
            vm_display_name=vm,
            name=f"{vm}@{start}",
            creation_time_utc=start,
            end_time_utc=end,
            result=result,
            reason=reason,
            total_size=size,
            **kw,
        )


@pytest.fixture
def wh(db_url):
    w = Warehouse(db_url)
    yield w
    w.close()


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, second, tzinfo=UTC)


# ---------------------------------------------------------------------- shape
def test_views_exist_with_the_documented_columns(wh):
    assert set(PUBLIC_VIEWS) <= set(views.names(wh.eng.dialect.name))
    with wh.eng.connect() as conn:
        for name, columns in PUBLIC_VIEWS.items():
            assert report.view_columns(conn, name) == columns, name
            assert conn.execute(text(f"SELECT COUNT(*) FROM {name}")).scalar() == 0


def test_migrate_again_recreates_views(wh):
    wh.server()
    db.migrate(wh.eng)
    assert len(wh.rows("v_vm_replica_status")) == 0


# ---------------------------------------------------------------------- job runs
def test_job_runs_durations_task_counts_and_bytes(wh):
    srv = wh.server("vbr01.lab")
    done = wh.session(srv, "SQL", at(3, 10), at(3, 10, 30, 15), "Warning")
    wh.task(done, srv, "sql-01", at(3, 10, 0, 5), at(3, 10, 20), "Success", size=10 * GIB)
    wh.task(done, srv, "sql-02", at(3, 10, 0, 6), at(3, 10, 25), "Warning", size=5 * GIB, reason="CBT off")
    wh.task(done, srv, "sql-03", at(3, 10, 0, 7), at(3, 10, 28), "Failed", size=3 * GIB, reason="snapshot")
    running = wh.session(srv, "SQL", at(3, 22), None, "None")
    wh.task(running, srv, "sql-01", at(3, 22, 0, 5), None, "None", size=10 * GIB)
    wh.task(running, srv, "sql-02", at(3, 22, 0, 6), at(3, 22, 10), "Success", size=5 * GIB)
    skewed = wh.session(srv, "Web", at(4, 8), at(4, 7, 59), "Success")  # end before start: bad clock
    empty = wh.session(srv, "Web", at(4, 9), at(4, 9, 0, 1), "Success")
    wh.add(schema.replica_job_sessions, name="ghost@x", placeholder=True)  # known only from a link

    rows = {r["session_uid"]: r for r in wh.rows("v_replica_job_runs")}
    assert set(rows) == {done, running, skewed, empty}
    d = rows[done]
    assert d["duration_s"] == pytest.approx(1815.0, abs=0.01)
    assert (d["tasks"], d["tasks_success"], d["tasks_warning"], d["tasks_failed"], d["tasks_running"]) == (
        3,
        1,
        1,
        1,
        0,
    )
    assert d["total_bytes"] == 18 * GIB and isinstance(d["total_bytes"], int)
    assert d["backup_server_name"] == "vbr01.lab" and d["job_name"] == "SQL Replication"
    assert d["creation_time_utc"] == at(3, 10) and d["end_time_utc"] == at(3, 10, 30, 15)
    assert str(d["day_utc"]) == "2025-03-03" and d["is_retry"] == 0
    r = rows[running]
    assert r["duration_s"] is None and r["result"] == "None" and r["end_time_utc"] is None
    assert (r["tasks"], r["tasks_running"], r["tasks_success"], r["total_bytes"]) == (2, 1, 1, 15 * GIB)
    assert rows[skewed]["duration_s"] is None  # never negative
    assert rows[empty]["duration_s"] == pytest.approx(1.0, abs=0.01)
    assert (rows[empty]["tasks"], rows[empty]["total_bytes"]) == (0, 0)
    assert all(r["duration_s"] is None or r["duration_s"] >= 0 for r in rows.values())


# ---------------------------------------------------------------------- daily, retries folded in
def test_daily_folds_a_successful_retry_into_its_failed_run(wh):
    srv = wh.server()
    # day 5: run 1 failed, retried successfully -> one group, recovered; run 2 failed twice -> failure
    wh.session(srv, "ERP", at(5, 1), at(5, 1, 30), "Failed")
    wh.session(srv, "ERP", at(5, 1, 40), at(5, 1, 50), "Success", retry=True)
    wh.session(srv, "ERP", at(5, 13), at(5, 13, 30), "Failed")
    wh.session(srv, "ERP", at(5, 13, 40), at(5, 13, 50), "Failed", retry=True)
    wh.session(srv, "ERP", at(5, 14), at(5, 14, 10), "Failed", retry=True)
    # day 6: a failed run at 23:30 whose retry succeeds after midnight stays with day 6
    wh.session(srv, "ERP", at(6, 23, 30), at(6, 23, 55), "Failed")
    wh.session(srv, "ERP", at(7, 0, 10), at(7, 0, 20), "Warning", retry=True)
    # day 7: then a warning run and a run still going
    wh.session(srv, "ERP", at(7, 9), at(7, 9, 30), "Warning")
    wh.session(srv, "ERP", at(7, 21), None, "None")

    days = {str(r["day_utc"]): r for r in wh.rows("v_replica_job_daily")}
    assert set(days) == {"2025-03-05", "2025-03-06", "2025-03-07"}
    d5 = days["2025-03-05"]
    assert (d5["runs"], d5["sessions"], d5["retries"]) == (2, 5, 3)
    assert (d5["successes"], d5["warnings"], d5["failures"], d5["recovered"], d5["running"]) == (
        1,
        0,
        1,
        1,
        0,
    )
    assert d5["success_rate"] == pytest.approx(0.5) and d5["final_result"] == "Failed"
    d6 = days["2025-03-06"]
    assert (d6["runs"], d6["sessions"], d6["warnings"], d6["failures"], d6["recovered"]) == (1, 2, 1, 0, 1)
    assert d6["success_rate"] == pytest.approx(1.0) and d6["final_result"] == "Warning"
    d7 = days["2025-03-07"]
    assert (d7["runs"], d7["sessions"], d7["warnings"], d7["running"]) == (2, 2, 1, 1)
    assert d7["success_rate"] == pytest.approx(1.0) and d7["final_result"] == "None"
    assert d7["job_name"] == "ERP Replication" and d7["backup_server_name"] == "vbr01"


def test_daily_success_rate_is_null_while_every_group_runs_and_retries_without_a_run_stand_alone(wh):
    srv = wh.server()
    wh.session(srv, "Dev", at(9, 4), at(9, 4, 10), "Success", retry=True)  # its run is older than the data
    wh.session(srv, "Dev", at(9, 6), at(9, 6, 10), "Success")
    wh.session(srv, "Lab", at(9, 8), None, "None")
    days = {r["job_name"]: r for r in wh.rows("v_replica_job_daily")}
    assert (days["Dev Replication"]["runs"], days["Dev Replication"]["successes"]) == (2, 2)
    lab = days["Lab Replication"]
    assert (lab["runs"], lab["running"], lab["success_rate"], lab["final_result"]) == (1, 1, None, "None")


# ---------------------------------------------------------------------- VM RPO status
def test_vm_status_rpo_breach_amber_and_green_against_now(wh):
    now = datetime.now(UTC)
    srv = wh.server("vbr02")
    s = wh.session(srv, "Mix", now - timedelta(hours=60), now - timedelta(hours=59), "Warning")

    def ran(vm, hours_ago, result, minutes=10):
        end = now - timedelta(hours=hours_ago)
        return wh.task(s, srv, vm, end - timedelta(minutes=minutes), end, result)

    ran("fresh", 30, "Failed")
    ran("fresh", 2, "Success")
    ran("old", 30, "Success")  # 30 h > 24 h: breach
    ran("half", 13, "Success")  # older than 12 h: amber
    ran("warned", 1, "Warning")  # a warning counts as success, but amber
    ran("flaky", 3, "Success")
    ran("flaky", 1, "Failed")  # newest attempt failed: amber
    ran("never", 5, "Failed")  # no success at all: breach
    running = wh.task(s, srv, "fresh", now - timedelta(minutes=5), None, "None")
    point_t = now - timedelta(hours=2, minutes=1)
    wh.add(
        schema.vm_replica_points,
        backup_server_uid=srv,
        vm_display_name="fresh",
        name="fresh@p",
        creation_time_utc=point_t,
        placeholder=False,
    )
    wh.add(
        schema.vm_replica_points,
        backup_server_uid=srv,
        vm_display_name="fresh",
        name="fresh@q",
        creation_time_utc=now - timedelta(hours=40),
        placeholder=False,
    )
    wh.add(schema.vm_replica_points, name="ghost@p", placeholder=True)

    vms = {r["vm_display_name"]: r for r in wh.rows("v_vm_replica_status")}
    assert set(vms) == {"fresh", "old", "half", "warned", "flaky", "never"}
    assert {k: (v["rpo_breach"], v["rpo_status"]) for k, v in vms.items()} == {
        "fresh": (0, "green"),
        "old": (1, "red"),
        "half": (0, "amber"),
        "warned": (0, "amber"),
        "flaky": (0, "amber"),
        "never": (1, "red"),
    }
    f = vms["fresh"]
    assert f["hours_since_success"] == pytest.approx(2.0, abs=0.05)
    assert abs(f["last_success_utc"] - (now - timedelta(hours=2))) < timedelta(milliseconds=2)
    assert (f["last_task_result"], f["last_task_state"], f["last_result"]) == (
        "None",
        "InProgress",
        "Success",
    )
    assert f["tasks"] == 3 and f["rpo_hours"] == 24
    assert abs(f["newest_point_utc"] - point_t) < timedelta(milliseconds=2) and f["replica_points"] == 2
    assert f["backup_server_name"] == "vbr02"
    assert vms["old"]["hours_since_success"] == pytest.approx(30.0, abs=0.05)
    assert vms["never"]["hours_since_success"] is None and vms["never"]["last_success_utc"] is None
    assert vms["flaky"]["last_result"] == "Failed"
    assert running  # the running task is the newest but does not hide the last finished result

    with wh.eng.begin() as conn:
        conn.execute(
            update(schema.etl_settings).where(schema.etl_settings.c.key == "rpo_hours").values(value="48")
        )
    vms = {r["vm_display_name"]: r for r in wh.rows("v_vm_replica_status")}
    assert (vms["old"]["rpo_breach"], vms["old"]["rpo_status"], vms["old"]["rpo_hours"]) == (0, "amber", 48)
    assert (vms["half"]["rpo_status"], vms["never"]["rpo_status"]) == ("green", "red")


def test_vm_status_compares_with_the_database_clock(wh):
    """The view's "now" is the query's: compare with the same clock rather than Python's."""
    srv = wh.server()
    s = wh.session(srv, "J", at(1, 0), at(1, 1), "Success")
    wh.task(s, srv, "vm", at(1, 0, 5), at(1, 0, 45), "Success")
    with wh.eng.connect() as conn:
        now = instant(conn.execute(text("SELECT now_utc FROM v__clock")).scalar())
        row = report.read_view(conn, "v_vm_replica_status")[0]
    expected = (now - at(1, 0, 45)).total_seconds() / 3600
    assert row["hours_since_success"] == pytest.approx(expected, abs=0.02)
    assert row["rpo_breach"] == 1


# ---------------------------------------------------------------------- transfer per day
def test_transfer_counts_bytes_on_the_utc_day_tasks_end(wh):
    a, b = wh.server("vbr-a"), wh.server("vbr-b")
    s = wh.session(a, "J", at(10, 23, 40), at(11, 0, 40), "Failed")
    wh.task(s, a, "vm1", at(10, 23, 41), at(10, 23, 59, 59), "Success", size=1 * GIB)
    wh.task(s, a, "vm2", at(10, 23, 50), at(11, 0, 20), "Warning", size=2 * GIB)  # across midnight
    wh.task(s, a, "vm3", at(10, 23, 51), at(11, 0, 30), "Failed", size=4 * GIB)
    wh.task(s, a, "vm4", at(11, 0, 31), None, "None", size=8 * GIB)  # running: not yet
    t = wh.session(b, "K", at(11, 5), at(11, 6), "Success")
    wh.task(t, b, "vm5", at(11, 5, 1), at(11, 5, 30), "Success", size=16 * GIB)

    got = {(r["backup_server_name"], str(r["day_utc"])): r for r in wh.rows("v_replica_transfer_daily")}
    assert set(got) == {("vbr-a", "2025-03-10"), ("vbr-a", "2025-03-11"), ("vbr-b", "2025-03-11")}
    assert (got["vbr-a", "2025-03-10"]["tasks"], got["vbr-a", "2025-03-10"]["bytes"]) == (1, GIB)
    d = got["vbr-a", "2025-03-11"]
    assert (d["tasks"], d["tasks_warning"], d["tasks_failed"], d["bytes"], d["bytes_ok"]) == (
        2,
        1,
        1,
        6 * GIB,
        2 * GIB,
    )
    assert got["vbr-b", "2025-03-11"]["bytes"] == 16 * GIB


# ---------------------------------------------------------------------- failures
def test_failures_newest_first_with_later_success(wh):
    srv = wh.server()
    run = wh.session(srv, "J", at(12, 1), at(12, 2), "Failed")
    retry = wh.session(srv, "J", at(12, 2, 10), at(12, 2, 40), "Warning", retry=True)
    f1 = wh.task(run, srv, "vm1", at(12, 1, 1), at(12, 1, 20), "Failed", reason="<b>snapshot</b> & co")
    wh.task(run, srv, "vm2", at(12, 1, 2), at(12, 1, 30), "Success")
    w1 = wh.task(retry, srv, "vm1", at(12, 2, 11), at(12, 2, 30), "Warning", reason="CBT")
    f2 = wh.task(run, srv, "vm3", at(12, 1, 3), at(12, 1, 50), "Failed", reason="timeout")
    ghost = wh.add(schema.replica_job_sessions, name="gone@x", placeholder=True)
    f3 = wh.task(ghost, srv, "vm4", at(12, 3), at(12, 3, 5), "Failed", reason="lost")

    rows = wh.rows("v_replica_failures")
    assert [r["task_uid"] for r in rows] == [f3, w1, f2, f1]
    by = {r["task_uid"]: r for r in rows}
    assert (by[f1]["later_success"], by[f2]["later_success"], by[w1]["later_success"]) == (1, 0, 0)
    assert by[f1]["reason"] == "<b>snapshot</b> & co" and by[f1]["job_name"] == "J Replication"
    assert by[w1]["is_retry"] == 1 and by[f1]["is_retry"] == 0
    assert by[f3]["job_name"] is None and by[f3]["occurred_utc"] == at(12, 3, 5)


# ---------------------------------------------------------------------- outcomes: State first, open Result
def test_a_working_session_saying_success_is_running_and_an_unknown_result_is_other(wh):
    """EM may send Result=Success on a session that still runs (em-backup-side.md §2): until State says
    Stopped/Completed it is running. A Result this tool does not know is counted as `other`: finished,
    never a success, never running."""
    now = datetime.now(UTC)
    srv = wh.server()
    busy = wh.session(srv, "Busy", at(14, 1), None, "Success", state="Working")
    wh.task(busy, srv, "busy-vm", at(14, 1, 1), None, "Success", state="InProgress")
    odd = wh.session(srv, "Odd", at(14, 2), at(14, 2, 30), "PartiallySucceeded")
    wh.task(odd, srv, "odd-vm", at(14, 2, 1), at(14, 2, 20), "PartiallySucceeded")
    wh.task(odd, srv, "odd-vm2", at(14, 2, 2), at(14, 2, 21), "Success")
    recent = wh.session(srv, "Fresh", now - timedelta(hours=3), now - timedelta(hours=2), "Success")
    wh.task(recent, srv, "fresh-vm", now - timedelta(hours=3), now - timedelta(hours=2), "Success")
    wh.task(recent, srv, "fresh-vm", now - timedelta(minutes=30), None, "Success", state="InProgress")
    wh.task(recent, srv, "late-vm", now - timedelta(hours=1), None, "Success", state="InProgress")

    days = {r["job_name"]: r for r in wh.rows("v_replica_job_daily")}
    b = days["Busy Replication"]
    assert (b["runs"], b["successes"], b["running"], b["other"], b["success_rate"]) == (1, 0, 1, 0, None)
    assert b["final_result"] == "None"
    o = days["Odd Replication"]
    assert (o["runs"], o["successes"], o["failures"], o["running"], o["other"]) == (1, 0, 0, 0, 1)
    assert o["success_rate"] == 0.0 and o["final_result"] == "PartiallySucceeded"

    runs = {r["session_uid"]: r for r in wh.rows("v_replica_job_runs")}
    assert runs[busy]["duration_s"] is None and runs[busy]["result"] == "Success"  # as EM sent it
    assert (runs[busy]["tasks_running"], runs[busy]["tasks_success"]) == (1, 0)
    assert (runs[odd]["tasks_other"], runs[odd]["tasks_success"], runs[odd]["tasks_running"]) == (1, 1, 0)
    assert runs[odd]["duration_s"] == pytest.approx(1800.0, abs=0.01)

    vms = {r["vm_display_name"]: r for r in wh.rows("v_vm_replica_status")}
    assert vms["busy-vm"]["last_success_utc"] is None and vms["busy-vm"]["rpo_status"] == "red"
    assert vms["odd-vm"]["last_result"] == "PartiallySucceeded" and vms["odd-vm"]["rpo_status"] == "red"
    assert vms["late-vm"]["rpo_breach"] == 1  # running with Result=Success: not a success yet
    f = vms["fresh-vm"]  # the newest task runs: the finished one before it still counts
    assert (f["last_result"], f["rpo_status"], f["last_task_state"]) == ("Success", "green", "InProgress")

    source = {
        str(r["day_utc"]): (r["tasks"], r["tasks_other"], r["source_bytes"])
        for r in wh.rows("v_replica_source_size_daily")
    }
    assert source == {
        (now - timedelta(hours=2)).date().isoformat(): (1, 0, GIB),  # the running tasks are not counted
        "2025-03-14": (2, 1, 2 * GIB),
    }
    failures = {r["vm_display_name"] for r in wh.rows("v_replica_failures")}
    assert failures == set()


def test_transfer_daily_is_a_renamed_view_of_source_size_daily(wh):
    srv = wh.server("vbr-x")
    s = wh.session(srv, "J", at(15, 1), at(15, 2), "Failed")
    wh.task(s, srv, "vm1", at(15, 1, 1), at(15, 1, 30), "Success", size=3 * GIB)
    wh.task(s, srv, "vm2", at(15, 1, 2), at(15, 1, 40), "Failed", size=0, reason="no space")
    wh.task(s, srv, "vm3", at(15, 1, 3), at(15, 1, 50), "Mystery", size=5 * GIB)
    (new,) = wh.rows("v_replica_source_size_daily")
    (old,) = wh.rows("v_replica_transfer_daily")
    assert (new["tasks"], new["tasks_success"], new["tasks_failed"], new["tasks_other"]) == (3, 1, 1, 1)
    assert (new["source_bytes"], new["source_bytes_ok"]) == (8 * GIB, 3 * GIB)
    assert (old["bytes"], old["bytes_ok"], old["tasks"]) == (new["source_bytes"], new["source_bytes_ok"], 3)
    assert "bytes" not in new and "source_bytes" not in old


# ---------------------------------------------------------------------- simulator ground truth
def expected_from_truth(truth: dict, now: datetime, rpo_hours: float = 24.0) -> dict:
    """What the views must say, computed from the simulator's truth rows without SQL. A session counts
    once it has finished (State Stopped / Completed), whatever its Result said before."""
    sessions = [s for s in truth["replica_job_sessions"].values() if not s["placeholder"]]
    tasks = list(truth["replica_task_sessions"].values())
    finished = ("Success", "Warning", "Failed")

    groups: dict[tuple, list] = defaultdict(list)  # (job, group number) -> sessions in start order
    by_job = defaultdict(list)
    for s in sessions:
        by_job[s["job_uid"]].append(s)
    for job, ss in by_job.items():
        n = 0
        for s in sorted(ss, key=lambda s: (s["creation_time_utc"], s["uid"])):
            n += 0 if s["is_retry"] else 1
            groups[job, n].append(s)
    daily: dict[tuple, dict] = {}
    for (job, _), ss in groups.items():
        day = ss[0]["creation_time_utc"].date().isoformat()
        d = daily.setdefault(
            (job, day),
            {
                "runs": 0,
                "sessions": 0,
                "retries": 0,
                "Success": 0,
                "Warning": 0,
                "Failed": 0,
                "recovered": 0,
                "running": 0,
                "other": 0,
            },
        )
        last = ss[-1]
        final = last["result"] if last["state"] == "Stopped" else "running"
        first = ss[0]["result"] if ss[0]["state"] == "Stopped" else "running"
        d["runs"] += 1
        d["sessions"] += len(ss)
        d["retries"] += sum(1 for s in ss if s["is_retry"])
        if final in finished:
            d[final] += 1
        else:
            d["running" if final == "running" else "other"] += 1
        d["recovered"] += first == "Failed" and final in ("Success", "Warning")
    for d in daily.values():
        done = d["runs"] - d["running"]
        d["success_rate"] = None if done == 0 else round((d["Success"] + d["Warning"]) / done, 4)

    vms: dict[tuple, dict] = {}
    for t in tasks:
        v = vms.setdefault((t["backup_server_uid"], t["vm_display_name"]), {"last_success": None})
        if (
            t["state"] == "Completed"
            and t["result"] in ("Success", "Warning")
            and (v["last_success"] is None or t["end_time_utc"] > v["last_success"])
        ):
            v["last_success"] = t["end_time_utc"]
    for v in vms.values():
        v["hours"] = None if v["last_success"] is None else (now - v["last_success"]).total_seconds() / 3600
        v["breach"] = int(v["hours"] is None or v["hours"] > rpo_hours)

    transfer: dict[tuple, list] = defaultdict(lambda: [0, 0])
    for t in tasks:
        if t["end_time_utc"] is not None and t["state"] == "Completed":
            cell = transfer[t["backup_server_uid"], t["end_time_utc"].date().isoformat()]
            cell[0] += 1
            cell[1] += t["total_size"]

    runs = {
        s["uid"]: None
        if s["end_time_utc"] is None or s["state"] != "Stopped"
        else (s["end_time_utc"] - s["creation_time_utc"]).total_seconds()
        for s in sessions
    }
    failures = {t["uid"] for t in tasks if t["state"] == "Completed" and t["result"] in ("Failed", "Warning")}
    return {"daily": daily, "vms": vms, "transfer": dict(transfer), "runs": runs, "failures": failures}


def load_truth(wh: Warehouse, truth: dict) -> None:
    meta = wh.meta()
    per_table = helpers.truth_rows(truth)
    with wh.eng.begin() as conn:
        for table in registry.tables():
            rows = [{**r, **meta} for r in per_table[table.name]]
            if rows:
                conn.execute(insert(table), rows)


def assert_views_match(wh: Warehouse, truth: dict, before: datetime, after: datetime) -> None:
    early, late = expected_from_truth(truth, before), expected_from_truth(truth, after)
    exp = late

    got_daily = {(r["job_uid"], str(r["day_utc"])): r for r in wh.rows("v_replica_job_daily")}
    assert set(got_daily) == set(exp["daily"])
    for key, e in exp["daily"].items():
        g = got_daily[key]
        assert (
            g["runs"],
            g["sessions"],
            g["retries"],
            g["successes"],
            g["warnings"],
            g["failures"],
            g["recovered"],
            g["running"],
            g["other"],
        ) == (
            e["runs"],
            e["sessions"],
            e["retries"],
            e["Success"],
            e["Warning"],
            e["Failed"],
            e["recovered"],
            e["running"],
            e["other"],
        ), key
        assert g["success_rate"] == (
            None if e["success_rate"] is None else pytest.approx(e["success_rate"])
        ), key

    got_vms = {(r["backup_server_uid"], r["vm_display_name"]): r for r in wh.rows("v_vm_replica_status")}
    assert set(got_vms) == set(exp["vms"])
    for key, e in exp["vms"].items():
        g = got_vms[key]
        if e["last_success"] is None:
            assert g["last_success_utc"] is None and g["rpo_breach"] == 1
            continue
        assert abs(g["last_success_utc"] - e["last_success"]) < timedelta(milliseconds=2), key
        assert early["vms"][key]["hours"] - 0.01 <= g["hours_since_success"] <= e["hours"] + 0.01, key
        if early["vms"][key]["breach"] == e["breach"]:  # not on the edge while the query ran
            assert g["rpo_breach"] == e["breach"], key

    got_source = {
        (r["backup_server_uid"], str(r["day_utc"])): [r["tasks"], r["source_bytes"]]
        for r in wh.rows("v_replica_source_size_daily")
    }
    assert got_source == exp["transfer"]
    got_transfer = {  # the deprecated name keeps its columns and rows
        (r["backup_server_uid"], str(r["day_utc"])): [r["tasks"], r["bytes"]]
        for r in wh.rows("v_replica_transfer_daily")
    }
    assert got_transfer == exp["transfer"]

    got_runs = {r["session_uid"]: r["duration_s"] for r in wh.rows("v_replica_job_runs")}
    assert set(got_runs) == set(exp["runs"])
    for uid, seconds in exp["runs"].items():
        assert got_runs[uid] == (None if seconds is None else pytest.approx(seconds, abs=0.01)), uid

    assert {r["task_uid"] for r in wh.rows("v_replica_failures")} == exp["failures"]


@pytest.mark.parametrize("seed", [3, 11])
def test_views_match_simulator_truth_loaded_directly(wh, seed):
    quirks = Quirks(deleted_server=True, deleted_point=True)
    world = World(
        seed=seed,
        servers=3,
        jobs=5,
        vms_per_job=6,
        days=9,
        runs_per_day=3,
        now=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=20),
        quirks=quirks,
    )
    truth = world.truth()
    assert any(s["is_retry"] for s in truth["replica_job_sessions"].values())
    assert any(s["result"] == "None" for s in truth["replica_job_sessions"].values())
    load_truth(wh, truth)
    before = datetime.now(UTC)
    wh.rows("v_vm_replica_status")
    assert_views_match(wh, truth, before, before + timedelta(seconds=60))
    daily = wh.rows("v_replica_job_daily")
    assert sum(d["recovered"] for d in daily) > 0
    assert {v["rpo_breach"] for v in wh.rows("v_vm_replica_status")} == {0, 1}  # both sides exercised


def test_views_match_simulator_after_a_real_load(wh):
    world = World(seed=5, jobs=4, vms_per_job=5, days=6, now=datetime.now(UTC).replace(microsecond=0))
    with Simulator(world, user="demo", password="demo") as sim:
        pipeline.run(wh.eng, sim.url, "demo", "demo", options=pipeline.Options(source="demo"))
        truth = world.truth(sim.url.rsplit("/api", 1)[0])
    before = datetime.now(UTC)
    assert_views_match(wh, truth, before, before + timedelta(seconds=30))
