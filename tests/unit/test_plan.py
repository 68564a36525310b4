"""etl.plan, pure: what a run reads, worked out from plain values (no engine, no client, no EM)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from etl import plan, registry
from etl.settings import Options

NOW = datetime(2025, 8, 15, 12, tzinfo=UTC)
S1, S2, S3 = "urn:veeam:BackupServer:1", "urn:veeam:BackupServer:2", "urn:veeam:BackupServer:3"
SESSION = registry.BACKUP_JOB_SESSION
TASK = registry.BACKUP_TASK_SESSION


def test_the_mode_follows_the_options_and_the_watermarks():
    marks = {SESSION.name: {S1: NOW}}
    assert plan.mode(Options(), {}) == "full"  # an empty warehouse
    assert plan.mode(Options(), marks) == "incremental"
    assert plan.mode(Options(full_refresh=True), marks) == "full"
    assert plan.mode(Options(since=NOW), {}) == "since"
    assert plan.mode(Options(repair=True, full_refresh=True), marks) == "repair"


def test_starts_are_per_backup_server_their_watermark_minus_the_lookback_a_new_server_whole():
    opts = Options(lookback=timedelta(hours=2))
    marks = {SESSION.name: {S1: NOW, S2: NOW - timedelta(days=1)}}
    assert plan.starts(opts, "incremental", marks, SESSION, {S1, S3}) == {
        S1: NOW - timedelta(hours=2),
        S2: NOW - timedelta(days=1, hours=2),  # a server with a watermark EM no longer lists
        S3: None,  # new: read whole
    }
    assert plan.starts(opts, "incremental", marks, TASK, {S1}) == {S1: None}  # new to this type
    assert plan.starts(opts, "full", marks, SESSION, {S1}) is None
    assert plan.starts(replace(opts, since=NOW), "since", marks, SESSION, {S1}) == NOW


def test_without_the_server_list_one_start_for_all_the_earliest_or_whole():
    assert plan.one_start({S1: NOW, S2: NOW - timedelta(hours=3)}) == NOW - timedelta(hours=3)
    assert plan.one_start({S1: NOW, S2: None}) is None
    assert plan.one_start({}) is None


def test_windows_per_server_and_what_each_says_of_the_watermarks():
    (whole,) = plan.windows(SESSION, None)
    assert whole == plan.Window(None, None) and whole.moves_watermarks and not whole.overlaps
    (one,) = plan.windows(SESSION, {S1: NOW, S2: None})
    assert one.starts == {S1: NOW, S2: None} and one.overlaps and one.moves_watermarks
    assert one.filter is not None and one.filter.endswith(f'BackupServerUid=="{S2}"')
    (inventory,) = plan.windows(registry.JOB, {S1: NOW})  # no time filter: read whole
    assert inventory == plan.Window(None, None)
    by_parent = plan.Window('BackupUid=="urn:veeam:Backup:1"', None)
    assert not by_parent.moves_watermarks and not by_parent.overlaps


def test_new_parents_children_are_read_only_where_no_window_reads_them():
    old, young, nameless = NOW - timedelta(days=20), NOW - timedelta(minutes=5), None
    new = [("p-old", S1, old), ("p-young", S1, young), ("p-s2", S2, old), ("p-backup", S1, nameless)]
    window = NOW - timedelta(hours=2)
    # S1 read from its window: the young parent's children are in it; S2 is read whole
    assert plan.parents_outside_windows(new, {S1: window, S2: None}) == ["p-backup", "p-old"]
    assert plan.parents_outside_windows(new, None) == []  # a full load reads everything
    assert plan.parents_outside_windows(new, window) == ["p-backup", "p-old", "p-s2"]  # --since
    assert plan.parents_outside_windows([("p-elsewhere", None, old)], {S1: window}) == ["p-elsewhere"]


def test_sessions_to_reread_job_sessions_by_uid_tasks_by_their_job_session():
    js1, js2, js9 = (f"urn:veeam:BackupJobSession:{i}" for i in (1, 2, 9))
    sessions = [SESSION, TASK]
    reread = plan.sessions_to_reread(
        sessions, {SESSION.name: [js2, js1], TASK.name: ["urn:veeam:BackupTaskSession:1"]}, {TASK.name: {js9}}
    )
    # the tasks of the job sessions read again (they may have got tasks since) and of the unfinished tasks
    assert reread == {SESSION.name: [js2, js1], TASK.name: [js1, js2, js9]}
    assert list(plan.reread_filters(SESSION, [js1])) == [f'UID=="{js1}"']
    assert list(plan.reread_filters(TASK, [js1, js9])) == [f'JobSessionUid=="{js1}",JobSessionUid=="{js9}"']
    assert plan.sessions_to_reread([TASK], {TASK.name: []}, {}) == {TASK.name: []}  # its job sessions refused


def test_jobs_are_asked_new_ones_first_then_the_others_of_the_servers_left_in_groups():
    candidates = [("j-new", S1, False), *((f"j{i:02}", S1, True) for i in range(45)), ("j-s2", S2, True)]
    assert plan.first_jobs(candidates) == [["j-new"]]
    groups = plan.job_groups(candidates, {S1})
    assert [len(g) for g in groups] == [40, 5] and "j-s2" not in sum(groups, [])
    assert plan.job_groups(candidates, {S3}) == []


@pytest.mark.parametrize(
    ("opts", "mode", "last", "before_check", "due"),
    [
        (Options(), "incremental", NOW - timedelta(hours=1), False, False),
        (Options(), "incremental", NOW - timedelta(hours=24), False, True),
        (Options(), "incremental", None, False, True),  # never swept
        (Options(), "incremental", NOW, True, True),  # before a completeness check
        (Options(), "full", NOW, False, True),
        (Options(), "repair", NOW, False, True),
        (Options(sweep=False), "full", None, True, False),  # forced off
        (Options(sweep=True), "incremental", NOW, False, True),
    ],
)
def test_when_the_sweep_is_due(opts, mode, last, before_check, due):
    assert plan.sweep_due(opts, mode, last, NOW, before_check) is due


def test_what_the_sweep_compares_a_type_with():
    point, backup = registry.RESTORE_POINT, registry.BACKUP
    assert plan.sweep_from(backup, "incremental", False, False, False) == "run"  # inventory: free
    assert plan.sweep_from(backup, "repair", False, False, True) is None  # a repair reads no inventory
    assert plan.sweep_from(point, "incremental", False, False, True) == "em"
    assert plan.sweep_from(point, "incremental", False, False, False) is None  # not due
    assert (
        plan.sweep_from(point, "full", True, False, True) is None
    )  # filled from empty: all it holds EM listed
    assert plan.sweep_from(point, "full", True, True, False) == "em"  # but placeholders EM may not list


@pytest.mark.parametrize(
    ("opts", "mode", "last", "due"),
    [
        (Options(), "incremental", NOW - timedelta(hours=1), False),
        (Options(), "incremental", NOW - timedelta(hours=24), True),
        (Options(), "incremental", None, True),
        (Options(), "full", NOW, True),
        (Options(), "repair", NOW, True),
        (Options(verify_hours=0), "incremental", NOW, True),
        (Options(verify=False), "full", None, False),
        (Options(verify=True), "incremental", NOW, True),
    ],
)
def test_when_the_completeness_check_is_due(opts, mode, last, due):
    assert plan.verify_due(opts, mode, last, NOW) is due
