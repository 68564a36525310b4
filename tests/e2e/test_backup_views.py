"""The backup-side reporting views (sql/v_backup_*, v_vm_backup_status, v_repository_capacity) on SQLite
and PostgreSQL, on warehouses filled by hand with the cases EM makes hard: retries that are separate
sessions, sessions that say Success while still running, Result values nobody documented, agent
per-computer sessions, placeholders, restore points removed by retention, servers without VmUid, and
repositories whose capacity EM does not know.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql as psql
from sqlalchemy import insert, text

import helpers
from etl import db, report, schema, views

GIB = 2**30
DAY = timedelta(days=1)

COLUMNS = {
    "v_backup_job_runs": [
        "job_uid",
        "job_name",
        "job_type",
        "backup_server_uid",
        "backup_server_name",
        "run_uid",
        "day_utc",
        "start_utc",
        "end_utc",
        "duration_s",
        "attempts",
        "started_by_retry",
        "outcome",
        "first_outcome",
        "recovered",
        "last_session_uid",
        "last_state",
        "last_result",
        "failure_message",
        "tasks",
        "vms",
        "vms_warning",
        "vms_failed",
        "vms_running",
        "computers",
        "computers_failed",
        "computers_running",
    ],
    "v_backup_job_daily": [
        "job_uid",
        "job_name",
        "job_type",
        "backup_server_uid",
        "backup_server_name",
        "day_utc",
        "runs",
        "attempts",
        "succeeded",
        "warnings",
        "failed",
        "recovered",
        "running",
        "idle",
        "other",
        "success_rate",
    ],
    "v_vm_backup_status": [
        "backup_server_uid",
        "backup_server_name",
        "kind",
        "vm_key",
        "keyed_by",
        "vm_uid",
        "vm_display_name",
        "tasks",
        "last_task_start_utc",
        "last_task_state",
        "last_task_result",
        "last_result",
        "last_reason",
        "last_result_utc",
        "last_success_utc",
        "last_job_uid",
        "last_job_name",
        "restore_points",
        "newest_point_utc",
        "point_age_hours",
        "rpo_hours",
        "rpo_breach",
        "rpo_status",
    ],
    "v_backup_size": [
        "backup_uid",
        "backup_name",
        "backup_type",
        "platform",
        "job_uid",
        "job_name",
        "repository_uid",
        "repository_name",
        "backup_server_uid",
        "backup_server_name",
        "files",
        "full_files",
        "incremental_files",
        "reverse_incremental_files",
        "backup_bytes",
        "data_bytes",
        "reduction_ratio",
        "newest_file_utc",
    ],
    "v_backup_size_by_job": [
        "job_uid",
        "job_name",
        "backup_server_uid",
        "backup_server_name",
        "backups",
        "repositories",
        "files",
        "backup_bytes",
        "data_bytes",
        "reduction_ratio",
        "newest_file_utc",
    ],
    "v_backup_size_by_repository": [
        "repository_uid",
        "repository_name",
        "backup_server_uid",
        "backup_server_name",
        "backups",
        "jobs",
        "files",
        "backup_bytes",
        "data_bytes",
        "reduction_ratio",
        "capacity_bytes",
        "free_bytes",
        "newest_file_utc",
    ],
    "v_repository_capacity": [
        "repository_uid",
        "repository_name",
        "kind",
        "backup_server_uid",
        "backup_server_name",
        "capacity_bytes",
        "free_bytes",
        "used_bytes",
        "free_pct",
        "low_free_pct",
        "low_free",
        "observed_utc",
        "observations",
        "free_7d_ago_bytes",
        "observed_7d_ago_utc",
        "free_change_7d_bytes",
        "free_30d_ago_bytes",
        "observed_30d_ago_utc",
        "free_change_30d_bytes",
    ],
    "v_repository_space_daily": [
        "repository_uid",
        "repository_name",
        "backup_server_uid",
        "backup_server_name",
        "day_utc",
        "observed_utc",
        "capacity_bytes",
        "free_bytes",
        "free_pct",
    ],
    "v_backup_failures": [
        "occurred_utc",
        "level",
        "failure_uid",
        "task_uid",
        "session_uid",
        "run_uid",
        "attempt",
        "is_retry",
        "result",
        "reason",
        "vm_key",
        "vm_display_name",
        "job_uid",
        "job_name",
        "backup_server_uid",
        "backup_server_name",
        "run_outcome",
        "recovered_by_retry",
        "later_success",
    ],
}


class Backups(helpers.Warehouse):
    """A migrated warehouse with terse helpers to add backup-side rows."""

    def server(self, name: str = "vbr01") -> str:
        return self.add(schema.backup_servers, name=name)

    def job(self, server: str, name: str, job_type: str = "Backup", **kw) -> str:
        uid = kw.pop("uid", f"urn:veeam:Job:{name.lower().replace(' ', '-')}")
        return self.ensure(schema.jobs, uid, backup_server_uid=server, name=name, job_type=job_type, **kw)

    def session(
        self,
        server: str,
        job: str,
        start: datetime | None,
        end: datetime | None,
        result: str,
        retry: bool = False,
        state: str | None = None,
        job_type: str = "Backup",
        **kw,
    ) -> str:
        job_uid = self.job(server, job, job_type)
        return self.add(
            schema.backup_job_sessions,
            backup_server_uid=server,
            job_uid=job_uid,
            job_name=job,
            job_type=job_type,
            name=f"{job}@{start}",
            creation_time_utc=start,
            end_time_utc=end,
            state=state or ("Stopped" if end is not None else "Working"),
            result=result,
            is_retry=retry,
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
        vm_uid: str | None = None,
        reason: str | None = None,
        state: str | None = None,
        **kw,
    ) -> str:
        return self.add(
            schema.backup_task_sessions,
            job_session_uid=session,
            backup_server_uid=server,
            vm_display_name=vm,
            vm_uid=vm_uid,
            name=f"{vm}@{start}",
            creation_time_utc=start,
            end_time_utc=end,
            state=state or ("Completed" if end is not None else "InProgress"),
            result=result,
            reason=reason,
            total_size=40 * GIB,
            **kw,
        )

    def repository(self, server: str, name: str, capacity: int | None, free: int | None, **kw) -> str:
        return self.add(
            schema.repositories,
            backup_server_uid=server,
            name=name,
            kind="WindowsLocal",
            capacity=capacity,
            free_space=free,
            **kw,
        )

    def space(
        self, repo: str, run_id: int, observed: datetime, capacity: int | None, free: int | None
    ) -> None:
        with self.eng.begin() as conn:
            conn.execute(
                insert(schema.repository_space).values(
                    repository_uid=repo,
                    run_id=run_id,
                    source="test",
                    observed_at=observed,
                    capacity=capacity,
                    free_space=free,
                )
            )

    def backup(self, server: str, name: str, repo: str | None, job: str | None, **kw) -> str:
        kw.setdefault("backup_type", "Standard")
        return self.add(
            schema.backups,
            backup_server_uid=server,
            name=name,
            repository_uid=repo,
            job_uid=job,
            platform="VMware",
            **kw,
        )

    def file(self, backup: str, server: str, name: str, size: int, data: int, **kw) -> str:
        return self.add(
            schema.backup_files,
            backup_uid=backup,
            backup_server_uid=server,
            name=name,
            file_type=name.rsplit(".", 1)[-1],
            backup_size=size,
            data_size=data,
            **kw,
        )

    def point(self, server: str, vm: str | None, at: datetime, ref: str | None = None, **kw) -> str:
        return self.add(
            schema.vm_restore_points,
            backup_server_uid=server,
            name=f"{kw.pop('name_vm', vm)}@{at:%Y-%m-%d %H:%M:%S}",
            vm_display_name=kw.pop("display", vm),
            vm_name=vm,
            hierarchy_obj_ref=ref,
            creation_time_utc=at,
            algorithm="Incremental",
            point_type="Increment",
            **kw,
        )

    def agent_point(self, server: str, computer: str, at: datetime, **kw) -> str:
        return self.add(
            schema.agent_restore_points,
            backup_server_uid=server,
            name=f"{computer}@{at:%Y-%m-%d %H:%M:%S}",
            computer_name=computer,
            creation_time_utc=at,
            algorithm="Incremental",
            point_type="Increment",
            **kw,
        )

    def agent_run(
        self, server: str, job: str, computer: str, start: datetime, end: datetime | None, result: str
    ):
        """An agent job's run for one computer: the AgentBackup session, its AgentManagement child and the
        computer's task (EM names the computer in the task's VmDisplayName, no VmUid)."""
        parent = self.session(server, job, start, end, result, job_type="AgentBackup")
        child = self.session(
            server,
            f"{job} - {computer}",
            start,
            end,
            result,
            job_type="AgentManagement",
            parent_session_uid=parent,
            uid=f"urn:veeam:BackupJobSession:{computer}-{start:%d%H%M}",
        )
        self.task(
            child, server, computer, start, end, result, reason=None if result == "Success" else "offline"
        )
        return parent

    def setting(self, key: str, value: str) -> None:
        with self.eng.begin() as conn:
            conn.execute(text("DELETE FROM etl_settings WHERE key = :k"), {"k": key})
            conn.execute(insert(schema.etl_settings).values(key=key, value=value))


@pytest.fixture
def wh(db_url):
    w = Backups(db_url)
    yield w
    w.close()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 6, day, hour, minute, tzinfo=UTC)


def by(rows: list[dict], key: str) -> dict:
    return {r[key]: r for r in rows}


# ---------------------------------------------------------------------- shape
def test_the_backup_views_exist_with_their_documented_columns_and_read_order(wh):
    assert set(COLUMNS) <= set(report.VIEWS) == set(views.public())
    with wh.eng.connect() as conn:
        for name, columns in COLUMNS.items():
            assert report.view_columns(conn, name) == columns, name
            assert report.read_view(conn, name) == []


# ---------------------------------------------------------------------- runs: retries folded in
def test_a_retry_chain_is_one_run_recovered_after_three_attempts(wh):
    srv = wh.server("vbr01.lab")
    first = wh.session(srv, "SQL", at(3, 22), at(3, 22, 30), "Failed", failure_message="snapshot failed")
    wh.task(first, srv, "sql-01", at(3, 22, 1), at(3, 22, 20), "Failed", vm_uid="urn:VMware:Vm:a.vm-1")
    wh.task(first, srv, "sql-02", at(3, 22, 1), at(3, 22, 25), "Success", vm_uid="urn:VMware:Vm:a.vm-2")
    second = wh.session(srv, "SQL", at(3, 22, 40), at(3, 22, 50), "Failed", retry=True)
    wh.task(second, srv, "sql-01", at(3, 22, 41), at(3, 22, 49), "Failed", vm_uid="urn:VMware:Vm:a.vm-1")
    third = wh.session(srv, "SQL", at(4, 0, 5), at(4, 0, 35), "Success", retry=True)  # after midnight
    wh.task(third, srv, "sql-01", at(4, 0, 6), at(4, 0, 30), "Success", vm_uid="urn:VMware:Vm:a.vm-1")
    nxt = wh.session(srv, "SQL", at(4, 22), at(4, 22, 10), "Warning")  # the next scheduled run
    wh.add(schema.backup_job_sessions, name="ghost@x", job_uid=wh.job(srv, "SQL"), placeholder=True)

    runs = by(wh.rows("v_backup_job_runs"), "run_uid")
    assert set(runs) == {first, nxt}
    r = runs[first]
    assert (r["attempts"], r["outcome"], r["first_outcome"], r["recovered"], r["started_by_retry"]) == (
        3,
        "Success",
        "Failed",
        1,
        0,
    )
    assert (r["start_utc"], r["end_utc"], r["last_session_uid"]) == (at(3, 22), at(4, 0, 35), third)
    assert r["duration_s"] == pytest.approx(2 * 3600 + 35 * 60, abs=0.01)
    assert str(r["day_utc"]) == "2025-06-03" and r["backup_server_name"] == "vbr01.lab"
    assert (r["tasks"], r["vms"], r["vms_failed"], r["vms_running"]) == (4, 2, 0, 0)  # newest task per VM
    assert r["failure_message"] is None  # the last attempt's
    assert (runs[nxt]["attempts"], runs[nxt]["outcome"], runs[nxt]["recovered"]) == (1, "Warning", 0)

    days = {str(d["day_utc"]): d for d in wh.rows("v_backup_job_daily")}
    d3 = days["2025-06-03"]
    assert (d3["runs"], d3["attempts"], d3["succeeded"], d3["recovered"], d3["failed"]) == (1, 3, 1, 1, 0)
    assert d3["success_rate"] == 1.0
    assert {str(d) for d in days} == {"2025-06-03", "2025-06-04"}  # the retry after midnight stays


def test_a_run_whose_retries_all_fail_is_one_failed_run_and_a_retry_without_its_run_stands_alone(wh):
    srv = wh.server()
    orphan = wh.session(srv, "Web", at(5, 0, 30), at(5, 0, 40), "Success", retry=True)  # run older than data
    run = wh.session(srv, "Web", at(5, 1), at(5, 1, 10), "Failed")
    wh.session(srv, "Web", at(5, 1, 20), at(5, 1, 30), "Failed", retry=True)
    runs = by(wh.rows("v_backup_job_runs"), "run_uid")
    assert (runs[orphan]["started_by_retry"], runs[orphan]["attempts"], runs[orphan]["outcome"]) == (
        1,
        1,
        "Success",
    )
    assert (runs[run]["attempts"], runs[run]["outcome"], runs[run]["recovered"]) == (2, "Failed", 0)
    (d,) = wh.rows("v_backup_job_daily")
    assert (d["runs"], d["succeeded"], d["failed"], d["recovered"], d["success_rate"]) == (2, 1, 1, 0, 0.5)


def test_a_session_saying_success_while_working_is_running_with_no_end_and_no_duration(wh):
    srv = wh.server()
    busy = wh.session(srv, "Copy", at(6, 1), None, "Success", state="Working")
    wh.task(busy, srv, "vm1", at(6, 1, 1), None, "Success")  # InProgress, Result already Success
    stopped_no_end = wh.session(srv, "Odd", at(6, 2), None, "Success", state="Stopped")
    done_then_retry = wh.session(srv, "Retry", at(6, 3), at(6, 3, 10), "Failed")
    wh.session(srv, "Retry", at(6, 3, 20), None, "Success", retry=True, state="Starting")

    runs = by(wh.rows("v_backup_job_runs"), "run_uid")
    b = runs[busy]
    assert (b["outcome"], b["end_utc"], b["duration_s"], b["last_result"]) == (
        "running",
        None,
        None,
        "Success",
    )
    assert (b["vms"], b["vms_running"]) == (1, 1)
    # Stopped without an end time: finished, but no end to measure a duration with
    assert (runs[stopped_no_end]["outcome"], runs[stopped_no_end]["duration_s"]) == ("Success", None)
    r = runs[done_then_retry]  # the retry runs: so does the run, though its first attempt failed
    assert (r["outcome"], r["first_outcome"], r["end_utc"], r["recovered"], r["attempts"]) == (
        "running",
        "Failed",
        None,
        0,
        2,
    )
    days = by(wh.rows("v_backup_job_daily"), "job_name")
    assert (days["Copy"]["running"], days["Copy"]["succeeded"], days["Copy"]["success_rate"]) == (1, 0, None)
    assert (days["Retry"]["running"], days["Retry"]["failed"], days["Retry"]["success_rate"]) == (1, 0, None)


def test_an_unknown_result_is_shown_as_sent_and_never_counted_as_success(wh):
    srv = wh.server()
    odd = wh.session(srv, "Future", at(7, 1), at(7, 1, 30), "PartiallySucceeded")
    wh.session(srv, "Future", at(7, 5), at(7, 5, 30), "Success")
    wh.session(srv, "Future", at(7, 9), at(7, 9, 30), "None")  # finished, EM says no result
    runs = by(wh.rows("v_backup_job_runs"), "run_uid")
    assert runs[odd]["outcome"] == "PartiallySucceeded" and runs[odd]["duration_s"] == pytest.approx(1800)
    (d,) = wh.rows("v_backup_job_daily")
    assert (d["runs"], d["succeeded"], d["other"], d["running"], d["failed"]) == (3, 1, 2, 0, 0)
    assert d["success_rate"] == pytest.approx(1 / 3, abs=1e-4)


def test_agent_per_computer_sessions_roll_up_under_their_parent_run(wh):
    srv = wh.server()
    parent = wh.session(srv, "Agents", at(8, 2), at(8, 2, 40), "Failed", job_type="AgentBackup")
    kids = {}
    for computer, result in (("pc1", "Success"), ("pc2", "Failed"), ("pc3", "Warning")):
        kids[computer] = wh.session(
            srv,
            f"Agents - {computer}",
            at(8, 2, 1),
            at(8, 2, 30),
            result,
            job_type="AgentManagement",
            parent_session_uid=parent,
        )
        wh.task(kids[computer], srv, computer, at(8, 2, 2), at(8, 2, 29), result)
    retry = wh.session(srv, "Agents", at(8, 3), at(8, 3, 20), "Success", retry=True, job_type="AgentBackup")
    again = wh.session(
        srv,
        "Agents - pc2",
        at(8, 3, 1),
        at(8, 3, 15),
        "Success",
        retry=True,
        job_type="AgentManagement",
        parent_session_uid=retry,
    )
    wh.task(again, srv, "pc2", at(8, 3, 2), at(8, 3, 14), "Success")

    (run,) = wh.rows("v_backup_job_runs")  # the per-computer sessions are not runs of their own
    assert (run["run_uid"], run["job_name"], run["job_type"], run["attempts"]) == (
        parent,
        "Agents",
        "AgentBackup",
        2,
    )
    assert (run["outcome"], run["recovered"]) == ("Success", 1)
    assert (run["computers"], run["computers_failed"], run["computers_running"]) == (3, 0, 0)
    assert (run["tasks"], run["vms"], run["vms_failed"], run["vms_warning"]) == (4, 3, 0, 1)
    (d,) = wh.rows("v_backup_job_daily")
    assert (d["runs"], d["attempts"], d["recovered"]) == (1, 2, 1)

    failures = by(wh.rows("v_backup_failures"), "failure_uid")
    pc2 = next(f for f in failures.values() if f["vm_display_name"] == "pc2")
    assert (pc2["run_uid"], pc2["attempt"], pc2["recovered_by_retry"], pc2["run_outcome"]) == (
        parent,
        1,
        1,
        "Success",
    )
    assert pc2["job_name"] == "Agents"  # the run's job, not the per-computer one
    # the parent's Failed is explained by pc2's task: no session-level row for the parent or the child
    assert parent not in failures and kids["pc2"] not in failures


def test_placeholders_are_not_runs(wh):
    srv = wh.server()
    job = wh.job(srv, "Ghost Job", placeholder=True)  # the job itself known only from a link
    ghost = wh.add(schema.backup_job_sessions, job_uid=job, name="Ghost@x", placeholder=True)
    wh.task(ghost, srv, "orphan-vm", at(9, 1), at(9, 1, 5), "Failed", reason="lost")
    real = wh.session(srv, "Ghost Job", at(9, 2), at(9, 2, 5), "Success")
    assert [r["run_uid"] for r in wh.rows("v_backup_job_runs")] == [real]
    assert [(d["runs"], d["succeeded"]) for d in wh.rows("v_backup_job_daily")] == [(1, 1)]
    # the task under the placeholder session is real: it still shows as a failure, without a run
    (f,) = wh.rows("v_backup_failures")
    assert (f["vm_display_name"], f["run_uid"], f["job_name"], f["reason"]) == (
        "orphan-vm",
        None,
        None,
        "lost",
    )


# ---------------------------------------------------------------------- failures
def test_failures_say_whether_a_retry_recovered_them(wh):
    srv = wh.server()
    first = wh.session(srv, "ERP", at(10, 1), at(10, 1, 30), "Failed")
    t1 = wh.task(first, srv, "erp-db", at(10, 1, 1), at(10, 1, 10), "Failed", reason="<b>VSS</b> & co")
    t2 = wh.task(first, srv, "erp-app", at(10, 1, 1), at(10, 1, 12), "Failed", reason="timeout")
    retry = wh.session(srv, "ERP", at(10, 1, 40), at(10, 1, 50), "Failed", retry=True)
    wh.task(retry, srv, "erp-db", at(10, 1, 41), at(10, 1, 49), "Success")
    t3 = wh.task(retry, srv, "erp-app", at(10, 1, 41), at(10, 1, 48), "Failed", reason="timeout")
    early = wh.session(srv, "Files", at(10, 4), at(10, 4, 1), "Failed", failure_message="repository offline")
    odd = wh.session(srv, "Files", at(10, 6), at(10, 6, 30), "Success")
    t4 = wh.task(odd, srv, "fs1", at(10, 6, 1), at(10, 6, 20), "Mystery", reason="new in v14")
    wh.task(odd, srv, "fs2", at(10, 6, 1), None, "Failed")  # still running: not a failure yet

    rows = wh.rows("v_backup_failures")
    assert [r["failure_uid"] for r in rows] == [t4, early, t3, t2, t1]  # newest first
    f = by(rows, "failure_uid")
    assert (f[t1]["recovered_by_retry"], f[t1]["later_success"], f[t1]["run_uid"], f[t1]["attempt"]) == (
        1,
        1,
        first,
        1,
    )
    assert (
        f[t2]["recovered_by_retry"],
        f[t3]["recovered_by_retry"],
        f[t3]["attempt"],
        f[t3]["is_retry"],
    ) == (
        0,
        0,
        2,
        1,
    )
    assert f[t1]["reason"] == "<b>VSS</b> & co" and f[t1]["run_outcome"] == "Failed"
    e = f[early]
    assert (e["level"], e["task_uid"], e["reason"], e["result"], e["job_name"]) == (
        "session",
        None,
        "repository offline",
        "Failed",
        "Files",
    )
    assert (f[t4]["result"], f[t4]["level"], f[t4]["run_outcome"]) == ("Mystery", "task", "Success")


# ---------------------------------------------------------------------- VM protection and RPO
def test_vm_status_keys_by_vm_uid_ignores_deleted_points_and_judges_the_rpo(wh):
    now = datetime.now(UTC)
    srv = wh.server("vbr13")
    s = wh.session(srv, "Prod", now - timedelta(hours=40), now - timedelta(hours=39), "Success")

    def vm(name, point_hours, result="Success", deleted_hours=None):
        ref = f"urn:VMware:Vm:c1.{name}"
        end = now - timedelta(hours=point_hours or 1)
        wh.task(s, srv, name, end - timedelta(minutes=20), end, result, vm_uid=ref, reason=f"{name} said so")
        if point_hours is not None:
            wh.point(srv, name, now - timedelta(hours=point_hours), ref)
            wh.point(srv, name, now - timedelta(hours=point_hours + 24), ref)
        if deleted_hours is not None:  # retention removed it; newer than the others, but gone
            wh.point(srv, name, now - timedelta(hours=deleted_hours), ref, deleted_at=now)
        return ref

    fresh = vm("fresh", 2)
    old = vm("old", 30)
    half = vm("half", 13)
    warned = vm("warned", 1, "Warning")
    gone = vm("gone", 30, deleted_hours=1)  # only the deleted point is fresh
    never = vm("never", None, "Failed")
    wh.point(srv, "points-only", now - timedelta(hours=3), "urn:VMware:Vm:c1.points-only")
    wh.task(s, srv, "fresh", now - timedelta(minutes=5), None, "Success", vm_uid=fresh)  # running

    vms = by(wh.rows("v_vm_backup_status"), "vm_key")
    assert {v["vm_display_name"]: (v["rpo_status"], v["rpo_breach"]) for v in vms.values()} == {
        "fresh": ("ok", 0),
        "old": ("breach", 1),
        "half": ("warning", 0),
        "warned": ("warning", 0),
        "gone": ("breach", 1),
        "never": ("breach", 1),
        "points-only": ("ok", 0),
    }
    f = vms[fresh]
    assert (f["keyed_by"], f["vm_uid"], f["restore_points"], f["tasks"]) == ("vm_uid", fresh, 2, 2)
    assert f["point_age_hours"] == pytest.approx(2.0, abs=0.05) and f["rpo_hours"] == 24
    assert (f["last_task_state"], f["last_task_result"], f["last_result"]) == (
        "InProgress",
        "Success",
        "Success",
    )
    assert (f["last_job_name"], f["backup_server_name"]) == ("Prod", "vbr13")
    assert vms[gone]["restore_points"] == 2 and vms[gone]["point_age_hours"] == pytest.approx(30, abs=0.05)
    assert (vms[never]["newest_point_utc"], vms[never]["point_age_hours"]) == (None, None)
    assert (vms[never]["last_result"], vms[never]["last_reason"]) == ("Failed", "never said so")
    assert vms[warned]["last_reason"] == "warned said so"
    assert vms["urn:VMware:Vm:c1.points-only"]["tasks"] == 0

    wh.setting("backup_rpo_hours", "48")
    vms = by(wh.rows("v_vm_backup_status"), "vm_key")
    assert (vms[old]["rpo_status"], vms[old]["rpo_hours"], vms[half]["rpo_status"]) == ("warning", 48, "ok")


def test_vm_status_on_a_server_without_vm_uid_keys_by_name(wh):
    now = datetime.now(UTC)
    old_srv, new_srv = wh.server("vbr-9"), wh.server("vbr-13")
    s = wh.session(old_srv, "Legacy", now - timedelta(hours=5), now - timedelta(hours=4), "Success")
    wh.task(s, old_srv, "web01", now - timedelta(hours=5), now - timedelta(hours=4), "Success")
    # points on the old server without HierarchyObjRef, one without name elements (name prefix only)
    wh.point(old_srv, "web01", now - timedelta(hours=4, minutes=30))
    wh.point(old_srv, None, now - timedelta(hours=28), display=None, name_vm="web01")
    wh.point(old_srv, "db@legacy", now - timedelta(hours=2))  # a name with '@' in it
    # a task without VmUid whose name the server's restore points map to one reference: one VM
    wh.task(s, old_srv, "app01", now - timedelta(hours=5), now - timedelta(hours=4), "Success")
    wh.point(old_srv, "app01", now - timedelta(hours=4), "urn:HyperV:Vm:h1.app01")
    # the same name on another server is another VM
    t = wh.session(new_srv, "Modern", now - timedelta(hours=50), now - timedelta(hours=49), "Success")
    wh.task(
        t, new_srv, "web01", now - timedelta(hours=50), now - timedelta(hours=49), "Success", vm_uid="urn:x"
    )

    rows = wh.rows("v_vm_backup_status")
    got = {(r["backup_server_name"], r["vm_key"]): r for r in rows}
    assert set(got) == {
        ("vbr-9", "web01"),
        ("vbr-9", "db@legacy"),
        ("vbr-9", "urn:HyperV:Vm:h1.app01"),
        ("vbr-13", "urn:x"),
    }
    w = got["vbr-9", "web01"]
    assert (w["keyed_by"], w["vm_uid"], w["restore_points"], w["tasks"], w["rpo_status"]) == (
        "name",
        None,
        2,
        1,
        "ok",
    )
    assert w["point_age_hours"] == pytest.approx(4.5, abs=0.05)
    a = got["vbr-9", "urn:HyperV:Vm:h1.app01"]
    assert (a["keyed_by"], a["tasks"], a["restore_points"], a["vm_display_name"]) == ("vm_uid", 1, 1, "app01")
    assert got["vbr-9", "db@legacy"]["vm_display_name"] == "db@legacy"
    assert got["vbr-13", "urn:x"]["rpo_status"] == "breach"  # task but no restore point at all


def test_agent_computers_are_judged_by_their_agent_restore_points(wh):
    """An agent computer's points are AgentRestorePoints (em-backup-side.md §10): a computer backed up an
    hour ago is ok, not a breach for want of a VM restore point; one whose agent has been unreachable
    for two days is a breach."""
    now = datetime.now(UTC)
    h = timedelta(hours=1)
    one, two = wh.server("vbr01"), wh.server("vbr02")
    wh.agent_run(one, "Servers", "srv001.corp", now - 2 * h, now - h, "Success")
    wh.agent_point(one, "srv001.corp", now - 1.5 * h)
    wh.agent_point(one, "srv001.corp", now - 13.5 * h)
    wh.agent_point(one, "srv001.corp", now - 0.5 * h, deleted_at=now)  # retention removed it: not counted
    for hours in (50, 38, 26, 14, 2):  # offline since two days: every run failed, no point since
        wh.agent_run(one, "Servers", "laptop02.corp", now - hours * h, now - (hours - 0.2) * h, "Failed")
    wh.agent_point(one, "laptop02.corp", now - 60 * h)
    wh.agent_run(
        two, "Laptops", "srv001.corp", now - 3 * h, now - 2 * h, "Success"
    )  # same name, other server
    wh.agent_point(two, "srv001.corp", now - 2.5 * h)
    # a VM of the same name is another machine
    s = wh.session(one, "Prod", now - 3 * h, now - 2 * h, "Success")
    wh.task(s, one, "srv001.corp", now - 3 * h, now - 2 * h, "Success", vm_uid="urn:VMware:Vm:c1.vm-9")
    wh.point(one, "srv001.corp", now - 2.5 * h, "urn:VMware:Vm:c1.vm-9")

    rows = {(r["backup_server_name"], r["kind"], r["vm_key"]): r for r in wh.rows("v_vm_backup_status")}
    assert set(rows) == {
        ("vbr01", "agent", "srv001.corp"),
        ("vbr01", "agent", "laptop02.corp"),
        ("vbr02", "agent", "srv001.corp"),
        ("vbr01", "vm", "urn:VMware:Vm:c1.vm-9"),
    }
    ok = rows["vbr01", "agent", "srv001.corp"]
    assert (ok["rpo_status"], ok["rpo_breach"], ok["keyed_by"], ok["vm_uid"], ok["vm_display_name"]) == (
        "ok",
        0,
        "computer_name",
        None,
        "srv001.corp",
    )
    assert (ok["restore_points"], ok["tasks"], ok["last_result"]) == (2, 1, "Success")
    assert ok["point_age_hours"] == pytest.approx(1.5, abs=0.05)
    assert (ok["last_job_uid"], ok["last_job_name"]) == ("urn:veeam:Job:servers", "Servers")  # the agent job
    offline = rows["vbr01", "agent", "laptop02.corp"]
    assert (offline["rpo_status"], offline["rpo_breach"], offline["tasks"], offline["last_result"]) == (
        "breach",
        1,
        5,
        "Failed",
    )
    assert offline["point_age_hours"] == pytest.approx(60, abs=0.05) and offline["last_reason"] == "offline"
    assert rows["vbr02", "agent", "srv001.corp"]["rpo_status"] == "ok"
    assert rows["vbr01", "vm", "urn:VMware:Vm:c1.vm-9"]["keyed_by"] == "vm_uid"


def test_a_task_under_a_session_the_warehouse_knows_only_by_link_still_belongs_to_its_computer(wh):
    now = datetime.now(UTC)
    srv = wh.server()
    ghost = wh.add(schema.backup_job_sessions, name="Agents - pc7@x", placeholder=True)
    wh.task(ghost, srv, "pc7.corp", now - timedelta(hours=3), now - timedelta(hours=2), "Success")
    wh.agent_point(srv, "pc7.corp", now - timedelta(hours=2.5))
    (row,) = wh.rows("v_vm_backup_status")
    assert (row["kind"], row["vm_key"], row["tasks"], row["restore_points"], row["rpo_status"]) == (
        "agent",
        "pc7.corp",
        1,
        1,
        "ok",
    )


def test_a_machine_whose_newest_task_succeeded_within_the_rpo_is_never_a_breach_for_want_of_a_point(wh):
    now = datetime.now(UTC)
    h = timedelta(hours=1)
    srv = wh.server()
    # points not (yet) in the warehouse: EM collects them later, or the account may not read them
    wh.agent_run(srv, "Servers", "new.corp", now - 2 * h, now - h, "Success")
    wh.agent_run(srv, "Servers", "warned.corp", now - 2 * h, now - h, "Warning")
    wh.agent_run(srv, "Servers", "stale.corp", now - 30 * h, now - 29 * h, "Success")  # success, outside
    wh.agent_point(srv, "stale.corp", now - 29.5 * h)
    wh.agent_run(srv, "Servers", "failing.corp", now - 2 * h, now - h, "Failed")
    s = wh.session(srv, "Prod", now - 2 * h, now - h, "Success")
    wh.task(s, srv, "vm-new", now - 2 * h, now - h, "Success", vm_uid="urn:VMware:Vm:c1.vm-new")
    wh.task(
        s, srv, "vm-running", now - h, None, "Success", vm_uid="urn:VMware:Vm:c1.vm-run"
    )  # never finished

    got = {r["vm_display_name"]: (r["rpo_status"], r["rpo_breach"]) for r in wh.rows("v_vm_backup_status")}
    assert got == {
        "new.corp": ("warning", 0),
        "warned.corp": ("warning", 0),
        "stale.corp": ("breach", 1),
        "failing.corp": ("breach", 1),
        "vm-new": ("warning", 0),
        "vm-running": ("breach", 1),  # a task still running has succeeded at nothing yet
    }
    wh.setting("backup_rpo_hours", "36")
    got = {r["vm_display_name"]: r["rpo_status"] for r in wh.rows("v_vm_backup_status")}
    assert got["stale.corp"] == "warning"  # a point within 36 h, older than half of it


def test_an_idle_backup_copy_run_is_idle_not_running(wh):
    """A backup copy session in State Idle waits for new restore points to copy: shown as idle, never as a
    run in progress for days, and not counted in the success rate."""
    srv = wh.server()
    copy = wh.job(srv, "Offsite Copy", "ImmediateBackupCopy")
    assert copy
    wh.session(srv, "Offsite Copy", at(12, 1), at(12, 20), "Success", job_type="ImmediateBackupCopy")
    idle = wh.session(
        srv, "Offsite Copy", at(12, 21), None, "None", state="Idle", job_type="ImmediateBackupCopy"
    )
    busy = wh.session(srv, "Nightly", at(12, 22), None, "None", state="Working")
    runs = by(wh.rows("v_backup_job_runs"), "run_uid")
    assert (runs[idle]["outcome"], runs[idle]["first_outcome"], runs[idle]["end_utc"]) == (
        "idle",
        "idle",
        None,
    )
    assert (runs[idle]["duration_s"], runs[idle]["last_state"]) == (None, "Idle")
    assert runs[busy]["outcome"] == "running"
    days = by(wh.rows("v_backup_job_daily"), "job_name")
    d = days["Offsite Copy"]
    assert (d["runs"], d["succeeded"], d["running"], d["idle"], d["other"], d["success_rate"]) == (
        2,
        1,
        0,
        1,
        0,
        1.0,
    )
    assert (days["Nightly"]["running"], days["Nightly"]["idle"]) == (1, 0)


def test_the_vm_name_of_a_point_without_name_elements_is_its_name_up_to_the_last_at(wh):
    srv = wh.server()
    wh.point(srv, None, at(11, 4), display=None, name_vm="mail@corp")
    (row,) = wh.rows("v_vm_backup_status")
    assert (row["vm_key"], row["vm_display_name"], row["keyed_by"]) == ("mail@corp", "mail@corp", "name")


# ---------------------------------------------------------------------- size on disk
def test_backup_size_counts_current_files_per_backup_job_and_repository(wh):
    srv = wh.server()
    repo_a = wh.repository(srv, "Repo A", 10_000 * GIB, 4_000 * GIB)
    repo_b = wh.repository(srv, "Repo B", None, 100 * GIB)
    sql = wh.job(srv, "SQL")
    agents = wh.job(srv, "Agents", "AgentBackup")
    b1 = wh.backup(srv, "SQL", repo_a, sql)
    wh.file(b1, srv, "SQL.vbk", 10 * GIB, 50 * GIB)
    wh.file(b1, srv, "SQL-1.vib", 2 * GIB, 6 * GIB)
    wh.file(b1, srv, "SQL-0.vbk", 9 * GIB, 40 * GIB, deleted_at=at(12, 0))  # removed by retention
    wh.file(b1, srv, "SQL-2.vrb", 0, 0)
    b2 = wh.backup(srv, "SQL copy", repo_b, sql)
    wh.file(b2, srv, "SQLc.vbk", 0, 0)  # nothing written: no ratio
    parent = wh.backup(srv, "Agents", repo_a, agents, backup_type="ParentBackup")
    child = wh.backup(srv, "Agents - pc1", repo_a, None, backup_type="ChildBackup", parent_backup_uid=parent)
    wh.file(child, srv, "pc1.vbk", 3 * GIB, 3 * GIB)
    gone = wh.backup(srv, "Old", repo_a, sql, deleted_at=at(12, 0))
    wh.file(gone, srv, "Old.vbk", 5 * GIB, 5 * GIB, deleted_at=at(12, 0))
    unknown = wh.backup(srv, "Who", None, None)
    wh.file(unknown, srv, "Who.vbk", GIB, 2 * GIB)

    rows = by(wh.rows("v_backup_size"), "backup_uid")
    assert set(rows) == {b1, b2, parent, child, unknown}
    r = rows[b1]
    assert (r["files"], r["full_files"], r["incremental_files"], r["reverse_incremental_files"]) == (
        3,
        1,
        1,
        1,
    )
    assert (r["backup_bytes"], r["data_bytes"], r["reduction_ratio"]) == (12 * GIB, 56 * GIB, 4.67)
    assert (r["job_name"], r["repository_name"]) == ("SQL", "Repo A")
    assert rows[b2]["reduction_ratio"] is None and rows[b2]["files"] == 1
    assert (rows[child]["job_uid"], rows[child]["job_name"]) == (agents, "Agents")  # the parent's job
    assert (rows[parent]["files"], rows[parent]["backup_bytes"]) == (0, 0)

    jobs = by(wh.rows("v_backup_size_by_job"), "job_name")
    assert (jobs["SQL"]["backups"], jobs["SQL"]["repositories"], jobs["SQL"]["backup_bytes"]) == (
        2,
        2,
        12 * GIB,
    )
    assert jobs["SQL"]["reduction_ratio"] == 4.67 and jobs["Agents"]["backup_bytes"] == 3 * GIB
    assert jobs[None]["backup_bytes"] == GIB and jobs[None]["job_uid"] is None
    repos = by(wh.rows("v_backup_size_by_repository"), "repository_name")
    a = repos["Repo A"]
    assert (a["backups"], a["jobs"], a["files"], a["backup_bytes"]) == (3, 2, 4, 15 * GIB)
    assert (a["capacity_bytes"], a["free_bytes"]) == (10_000 * GIB, 4_000 * GIB)
    assert (repos["Repo B"]["capacity_bytes"], repos["Repo B"]["reduction_ratio"]) == (None, None)
    assert isinstance(a["backup_bytes"], int)


# ---------------------------------------------------------------------- repository capacity
def test_repository_capacity_unknown_capacity_and_the_change_over_7_and_30_days(wh):
    now = datetime.now(UTC)
    srv = wh.server()
    big = wh.repository(srv, "Big", 1000 * GIB, 50 * GIB)
    cloud = wh.repository(srv, "Cloud", None, 700 * GIB)  # EM said Capacity -1
    wh.repository(srv, "Raw", -1, -1)  # defensive: a -1 that reached the table anyway
    fresh = wh.repository(srv, "Fresh", 100 * GIB, 80 * GIB)
    wh.repository(srv, "Linked", None, None, placeholder=True)
    history = [(40, 400), (31, 300), (29, 250), (8, 120), (6, 90), (0, 50)]
    for run, (days_ago, free) in enumerate(history, start=100):
        wh.space(big, run, now - timedelta(days=days_ago, minutes=1), 1000 * GIB, free * GIB)
    wh.space(cloud, 100, now - timedelta(days=10), None, 800 * GIB)
    wh.space(fresh, 105, now - timedelta(hours=1), 100 * GIB, 80 * GIB)

    rows = by(wh.rows("v_repository_capacity"), "repository_name")
    assert set(rows) == {"Big", "Cloud", "Raw", "Fresh"}
    b = rows["Big"]
    assert (b["capacity_bytes"], b["free_bytes"], b["used_bytes"], b["free_pct"]) == (
        1000 * GIB,
        50 * GIB,
        950 * GIB,
        5.0,
    )
    assert (b["low_free"], b["low_free_pct"], b["observations"]) == (1, 10, 6)
    assert (b["free_7d_ago_bytes"], b["free_change_7d_bytes"]) == (120 * GIB, -70 * GIB)
    assert (b["free_30d_ago_bytes"], b["free_change_30d_bytes"]) == (300 * GIB, -250 * GIB)
    assert abs(b["observed_7d_ago_utc"] - (now - timedelta(days=8, minutes=1))) < timedelta(seconds=1)
    c = rows["Cloud"]  # unknown capacity: nothing divided by it
    assert (c["capacity_bytes"], c["used_bytes"], c["free_pct"], c["low_free"]) == (None, None, None, None)
    assert (c["free_change_7d_bytes"], c["free_change_30d_bytes"]) == (-100 * GIB, None)
    r = rows["Raw"]
    assert (r["capacity_bytes"], r["free_bytes"], r["free_pct"], r["observations"]) == (None, None, None, 0)
    f = rows["Fresh"]  # history too short for either comparison
    assert (f["free_pct"], f["low_free"], f["free_change_7d_bytes"], f["free_change_30d_bytes"]) == (
        80.0,
        0,
        None,
        None,
    )
    assert [r["repository_name"] for r in wh.rows("v_repository_capacity")] == [
        "Big",
        "Fresh",
        "Cloud",
        "Raw",
    ]

    wh.setting("repository_low_free_pct", "2.5")
    assert by(wh.rows("v_repository_capacity"), "repository_name")["Big"]["low_free"] == 0


def test_repository_space_daily_keeps_the_last_observation_of_each_day(wh):
    srv = wh.server()
    repo = wh.repository(srv, "R", 100 * GIB, 10 * GIB)
    cloud = wh.repository(srv, "C", None, 5 * GIB)
    wh.space(repo, 1, at(20, 1), 100 * GIB, 30 * GIB)
    wh.space(repo, 2, at(20, 23, 59), 100 * GIB, 25 * GIB)  # the day's last
    wh.space(repo, 3, at(21, 0, 1), 100 * GIB, 10 * GIB)
    wh.space(cloud, 1, at(20, 5), None, 5 * GIB)
    rows = {(r["repository_name"], str(r["day_utc"])): r for r in wh.rows("v_repository_space_daily")}
    assert set(rows) == {("R", "2025-06-20"), ("R", "2025-06-21"), ("C", "2025-06-20")}
    assert (rows["R", "2025-06-20"]["free_bytes"], rows["R", "2025-06-20"]["free_pct"]) == (25 * GIB, 25.0)
    assert rows["R", "2025-06-20"]["observed_utc"] == at(20, 23, 59)
    assert (rows["C", "2025-06-20"]["capacity_bytes"], rows["C", "2025-06-20"]["free_pct"]) == (None, None)


# ---------------------------------------------------------------------- docs/bi.md, as a read-only role
def _bi_backup_queries() -> list[str]:
    """The SQL blocks of docs/bi.md's backup section, without Grafana's macros (Grafana expands them)."""
    doc = (helpers.ROOT / "docs" / "bi.md").read_text(encoding="utf-8")
    start = doc.index("\n## 4. Backup dashboard queries\n")
    section = doc[start : doc.index("\n## ", start + 1)]
    blocks = re.findall(r"^```sql\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    return [b.strip().rstrip(";") for b in blocks if "$__" not in b]


def test_bi_backup_queries_read_views_created_after_the_grants_as_a_read_only_role(pg):
    """docs/bi.md's backup queries return rows, run by a role that may only read, on views that the
    loading role created after the default privileges were set (as each `veeam-etl migrate` does)."""
    tag = uuid.uuid4().hex[:8]
    owner, reader, name = f"etl_{tag}", f"bi_{tag}", f"bi_{tag}"
    with psycopg.connect(pg.psql_dsn(), autocommit=True) as admin:
        admin.execute(psql.SQL("CREATE ROLE {} LOGIN").format(psql.Identifier(owner)))
        admin.execute(psql.SQL("CREATE ROLE {} LOGIN").format(psql.Identifier(reader)))
    pg.create_database(name, owner=owner)
    try:
        with psycopg.connect(pg.psql_dsn(name), autocommit=True) as admin:
            admin.execute(
                psql.SQL(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT SELECT ON TABLES TO {}"
                ).format(psql.Identifier(owner), psql.Identifier(reader))
            )
            admin.execute(
                psql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(
                    psql.Identifier(reader)
                )
            )
        eng = db.engine(pg.url(name, owner))
        db.migrate(eng)  # tables and views created by the loading role, after the grants
        helpers.add_backup_estate(eng, datetime.now(UTC))
        eng.dispose()
        queries = _bi_backup_queries()
        assert len(queries) >= 6
        with psycopg.connect(pg.psql_dsn(name, reader)) as conn:
            for query in queries:
                rows = conn.execute(query).fetchall()
                assert rows, query
                conn.rollback()
            success = conn.execute(queries[0]).fetchone()
            assert success[:3] == ("BI Backup", "vbr-bi", 3) and float(success[-1]) == 100.0  # recovered run
            conn.rollback()
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("INSERT INTO etl_settings (key, value) VALUES ('backup_rpo_hours', '1')")
    finally:
        pg.drop_database(name)
        with psycopg.connect(pg.psql_dsn(), autocommit=True) as admin:
            for role in (reader, owner):
                admin.execute(psql.SQL("DROP ROLE IF EXISTS {}").format(psql.Identifier(role)))
