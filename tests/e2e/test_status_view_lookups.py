"""The per-machine status views (v_vm_backup_status, v_vm_replica_status) find a machine's newest task and
newest finished task by looking them up per group of its tasks (sql/v__vm_*_tasks_newest): these cases
take every path of those lookups, on SQLite and PostgreSQL. A machine whose tasks fall in several groups
(a renamed VM, a server without VmUid), two tasks started at the same instant, a newest task still
running, a task without a creation time (ordered as the database orders NULLs: first on PostgreSQL, last
on SQLite, as the views always did), and one name that is a VM and an agent computer on the same server.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import helpers
from etl import schema

H = timedelta(hours=1)


class Estate(helpers.Warehouse):
    """A migrated warehouse with terse helpers for sessions, tasks and points of both sides."""

    def server(self, name: str) -> str:
        return self.add(schema.backup_servers, name=name)

    def backup_session(self, server: str, start: datetime | None, job_type: str = "Backup", **kw) -> str:
        job = self.ensure(schema.jobs, f"urn:veeam:Job:{job_type}", name=job_type, job_type=job_type)
        return self.add(
            schema.backup_job_sessions,
            backup_server_uid=server,
            job_uid=job,
            job_name=job_type,
            job_type=job_type,
            creation_time_utc=start,
            end_time_utc=None if start is None else start + H,
            state="Stopped",
            result="Success",
            is_retry=False,
            **kw,
        )

    def backup_task(
        self, session: str, server: str, vm: str, start: datetime | None, result: str, **kw
    ) -> str:
        running = result == "None"
        return self.add(
            schema.backup_task_sessions,
            job_session_uid=session,
            backup_server_uid=server,
            vm_display_name=vm,
            creation_time_utc=start,
            end_time_utc=None if running or start is None else start + H / 2,
            state="InProgress" if running else "Completed",
            result=result,
            reason=None if result == "Success" else f"{vm} {result}",
            **kw,
        )

    def replica_session(self, server: str, start: datetime) -> str:
        job = self.ensure(schema.jobs, "urn:veeam:Job:replica", name="Replica", job_type="Replica")
        return self.add(
            schema.replica_job_sessions,
            backup_server_uid=server,
            job_uid=job,
            job_name="Replica",
            creation_time_utc=start,
            end_time_utc=start + H,
            state="Stopped",
            result="Success",
            is_retry=False,
        )

    def replica_task(
        self, session: str, server: str, vm: str, start: datetime | None, result: str, **kw
    ) -> str:
        running = result == "None"
        return self.add(
            schema.replica_task_sessions,
            job_session_uid=session,
            backup_server_uid=server,
            vm_display_name=vm,
            creation_time_utc=start,
            end_time_utc=None if running or start is None else start + H / 2,
            state="InProgress" if running else "Completed",
            result=result,
            **kw,
        )


@pytest.fixture
def wh(db_url):
    w = Estate(db_url)
    yield w
    w.close()


def test_a_vm_whose_tasks_fall_in_several_groups_has_its_newest_tasks_across_all_of_them(wh):
    now = datetime.now(UTC).replace(microsecond=0)
    srv = wh.server("vbr01")
    ref = "urn:VMware:Vm:vc1.vm-7"
    old = wh.backup_session(srv, now - 50 * H)
    wh.backup_task(old, srv, "web-old", now - 50 * H, "Success", vm_uid=ref)  # before the rename
    mid = wh.backup_session(srv, now - 30 * H)
    wh.backup_task(mid, srv, "web", now - 30 * H, "Warning", vm_uid=ref)
    # a job on a server part that sends no VmUid: its task joins the VM by the name only `ref` bears
    late = wh.backup_session(srv, now - 10 * H)
    wh.backup_task(late, srv, "web", now - 10 * H, "Failed", uid="urn:veeam:BackupTaskSession:late")
    running = wh.backup_session(srv, now - H)
    wh.backup_task(running, srv, "web", now - H, "None", vm_uid=ref)

    (vm,) = wh.rows("v_vm_backup_status")
    assert (vm["vm_key"], vm["keyed_by"], vm["vm_display_name"], vm["tasks"]) == (ref, "vm_uid", "web", 4)
    assert (vm["last_task_state"], vm["last_task_result"]) == ("InProgress", "None")  # the newest group's
    assert (vm["last_result"], vm["last_reason"]) == ("Failed", "web Failed")  # the name-keyed group's
    assert vm["last_success_utc"] == now - 30 * H + H / 2  # the Warning: the newest success ended
    assert vm["rpo_status"] == "breach"


def test_of_two_tasks_started_at_the_same_instant_the_one_with_the_higher_uid_is_the_newest(wh):
    now = datetime.now(UTC).replace(microsecond=0)
    srv = wh.server("vbr01")
    s = wh.backup_session(srv, now - 2 * H)
    for uid, result in (
        ("urn:veeam:BackupTaskSession:b", "Warning"),
        ("urn:veeam:BackupTaskSession:a", "Failed"),
    ):
        wh.backup_task(s, srv, "db01", now - 2 * H, result, vm_uid="urn:x:db01", uid=uid)
    r = wh.replica_session(srv, now - 2 * H)
    for uid, result in (
        ("urn:veeam:ReplicaTaskSession:a", "Success"),
        ("urn:veeam:ReplicaTaskSession:b", "Failed"),
    ):
        wh.replica_task(r, srv, "db01", now - 2 * H, result, uid=uid)

    (vm,) = wh.rows("v_vm_backup_status")
    assert (vm["last_task_result"], vm["last_result"], vm["tasks"]) == ("Warning", "Warning", 2)
    (rep,) = wh.rows("v_vm_replica_status")
    assert (rep["last_task_result"], rep["last_result"], rep["rpo_status"]) == ("Failed", "Failed", "amber")


def test_a_newest_task_still_running_leaves_the_result_to_the_newest_finished_one(wh):
    now = datetime.now(UTC).replace(microsecond=0)
    srv = wh.server("vbr01")
    for hours, result in ((30, "Success"), (20, "Failed"), (1, "None")):
        s = wh.backup_session(srv, now - hours * H)
        wh.backup_task(s, srv, "app01", now - hours * H, result, vm_uid="urn:x:app01")
        r = wh.replica_session(srv, now - hours * H)
        wh.replica_task(r, srv, "app01", now - hours * H, result)

    (vm,) = wh.rows("v_vm_backup_status")
    assert (vm["last_task_state"], vm["last_result"], vm["last_reason"]) == (
        "InProgress",
        "Failed",
        "app01 Failed",
    )
    assert vm["last_result_utc"] == now - 20 * H + H / 2
    (rep,) = wh.rows("v_vm_replica_status")
    assert (rep["last_task_state"], rep["last_result"], rep["tasks"]) == ("InProgress", "Failed", 3)
    assert rep["last_success_utc"] == now - 30 * H + H / 2 and rep["rpo_breach"] == 1


def test_a_task_without_a_creation_time_is_ordered_as_the_database_orders_nulls(wh):
    """EM always sends CreationTimeUTC; a task stored without one is the newest on PostgreSQL (NULLs come
    first in a descending order) and the oldest on SQLite (they come last), as before the lookups."""
    now = datetime.now(UTC).replace(microsecond=0)
    srv = wh.server("vbr01")
    s = wh.backup_session(srv, now - 3 * H)
    wh.backup_task(s, srv, "fs01", now - 3 * H, "Success", vm_uid="urn:x:fs01")
    wh.backup_task(s, srv, "fs01", None, "Failed", vm_uid="urn:x:fs01")
    r = wh.replica_session(srv, now - 3 * H)
    wh.replica_task(r, srv, "fs01", now - 3 * H, "Success")
    wh.replica_task(r, srv, "fs01", None, "Failed")
    untimed_first = wh.eng.dialect.name == "postgresql"

    (vm,) = wh.rows("v_vm_backup_status")
    (rep,) = wh.rows("v_vm_replica_status")
    for row in (vm, rep):
        assert row["tasks"] == 2
        assert row["last_task_start_utc"] == (None if untimed_first else now - 3 * H)
        assert (row["last_task_result"], row["last_result"]) == (
            ("Failed",) * 2 if untimed_first else ("Success",) * 2
        )


def test_one_name_backed_up_as_a_vm_and_as_an_agent_computer_on_a_server_without_vm_uid_is_two_machines(wh):
    now = datetime.now(UTC).replace(microsecond=0)
    srv = wh.server("vbr-9")
    vm_job = wh.backup_session(srv, now - 5 * H)
    wh.backup_task(vm_job, srv, "srv01", now - 5 * H, "Success")
    wh.backup_task(vm_job, srv, "srv02", now - 5 * H, "Success")
    agent_job = wh.backup_session(srv, now - 2 * H, job_type="AgentBackup")
    wh.backup_task(agent_job, srv, "srv01", now - 2 * H, "Failed")

    got = {(r["kind"], r["vm_key"]): r for r in wh.rows("v_vm_backup_status")}
    assert set(got) == {("vm", "srv01"), ("vm", "srv02"), ("agent", "srv01")}
    vm, agent = got["vm", "srv01"], got["agent", "srv01"]
    assert (vm["keyed_by"], vm["tasks"], vm["last_result"]) == ("name", 1, "Success")
    assert (agent["keyed_by"], agent["tasks"], agent["last_result"]) == ("computer_name", 1, "Failed")
    assert agent["last_task_start_utc"] == now - 2 * H
