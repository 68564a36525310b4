"""`veeam-etl report`: table, CSV and JSON output on both databases, and the HTML page rendered in a real
headless Chromium (Debian's `chromium`; missing it fails the test, never skips it).
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select, text

from etl import db, report, schema
from etl.cli import main
from etl.report import charts, summary
from etl.report import text as terminal
from etl.simulator import World
from helpers import cli, truth_rows

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HOSTILE_VM = '<script>alert("vm")</script>&"vm'
HOSTILE_JOB = "<img src=x onerror=alert(1)> Job"


def _load(url: str, seed: int = 2) -> None:
    """A warehouse holding a simulated estate, plus a VM and a job with hostile names."""
    eng = db.engine(url)
    db.migrate(eng)
    now = datetime.now(UTC).replace(microsecond=0)
    truth = World(seed=seed, servers=2, jobs=4, vms_per_job=6, days=10, now=now).truth()
    with eng.begin() as conn:
        run_id = conn.execute(
            insert(schema.etl_runs)
            .values(source="test", started_at=now, finished_at=now, status="succeeded", mode="full")
            .returning(schema.etl_runs.c.id)
        ).scalar()
        meta = schema.meta_values("test", run_id, now)
        for table, rows in truth_rows(truth).items():
            if rows:
                conn.execute(insert(schema.table(table)), [{**r, **meta} for r in rows])
        server = next(iter(truth["backup_servers"]))
        _job(conn, "urn:veeam:Job:evil", HOSTILE_JOB, meta)
        conn.execute(
            insert(schema.replica_job_sessions).values(
                uid="urn:veeam:ReplicaJobSession:evil",
                backup_server_uid=server,
                job_uid="urn:veeam:Job:evil",
                job_name=HOSTILE_JOB,
                name="evil@1",
                creation_time_utc=now - timedelta(hours=30),
                end_time_utc=now - timedelta(hours=29),
                state="Stopped",
                result="Failed",
                is_retry=False,
                placeholder=False,
                **meta,
            )
        )
        conn.execute(
            insert(schema.replica_task_sessions).values(
                uid="urn:veeam:ReplicaTaskSession:evil",
                job_session_uid="urn:veeam:ReplicaJobSession:evil",
                backup_server_uid=server,
                vm_display_name=HOSTILE_VM,
                name="evil@1",
                creation_time_utc=now - timedelta(hours=30),
                end_time_utc=now - timedelta(hours=29, minutes=30),
                state="Completed",
                result="Failed",
                reason="</td><b>reason</b>",
                total_size=2**30,
                **meta,
            )
        )
        _add_outcome_cases(conn, server, meta, now)
        _add_backup_history(conn, sorted(truth["backup_servers"]), meta, now, seed)
    eng.dispose()


BACKUP_JOBS = ("File Servers", "SQL Production", "Exchange", "Web Farm", "Agents Laptops")
HOSTILE_BACKUP_VM = '<svg onload=alert("bk")>&vm'
HOSTILE_BACKUP_REASON = "</td><i>bk</i>"


def _add_backup_history(conn, servers: list[str], meta: dict, now: datetime, seed: int) -> None:
    """Two weeks of backup runs on every server: nightly runs of five jobs, some failing and some fixed
    by an automatic retry, one run still going, one Result nobody documented; VMs whose newest restore
    point is fresh, old, removed by retention or missing; repositories with a history, one low on space
    and one of unknown capacity; backups with files."""
    rng = random.Random(seed)
    h = timedelta(hours=1)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    n = iter(range(1, 1_000_000))

    def row(table, **values) -> str:
        values.setdefault("uid", f"urn:veeam:{table.name}:report-{next(n)}")
        if "placeholder" in table.c:
            values.setdefault("placeholder", False)
        conn.execute(insert(table).values(**values, **meta))
        return values["uid"]

    for si, server in enumerate(servers[:2]):
        repos = [
            row(
                schema.repositories,
                backup_server_uid=server,
                name="Default Backup Repository",
                kind="WindowsLocal",
                capacity=2048 * 2**30,
                free_space=(150 if si == 0 else 900) * 2**30,
            ),
            row(
                schema.repositories,
                backup_server_uid=server,
                name=f"Cloud Tier {si + 1}",
                kind="Cloud",
                capacity=None,
                free_space=5000 * 2**30,
            ),
        ]
        for day in range(14, -1, -1):
            for k, repo in enumerate(repos):
                free = (150 if si == 0 else 900) + day * (25 if si == 0 else 4) if k == 0 else 5000 + day * 10
                conn.execute(
                    insert(schema.repository_space).values(
                        repository_uid=repo,
                        run_id=10_000 + day,
                        source=meta["source"],
                        observed_at=now - timedelta(days=day, minutes=5),
                        capacity=2048 * 2**30 if k == 0 else None,
                        free_space=free * 2**30,
                    )
                )
        for ji, job_name in enumerate(BACKUP_JOBS[si * 2 : si * 2 + 3]):
            job = row(
                schema.jobs,
                uid=f"urn:veeam:Job:report-{si}-{ji}",
                backup_server_uid=server,
                name=job_name,
                job_type="Backup",
            )
            vms = [f"{job_name.split()[0].lower()}-{v:02d}" for v in range(1, 4)]
            if si == 0 and ji == 0:
                vms.append(HOSTILE_BACKUP_VM)
            backup = row(
                schema.backups,
                backup_server_uid=server,
                repository_uid=repos[ji % 2],
                job_uid=job,
                name=job_name,
                platform="VMware",
                backup_type="Standard",
            )
            for day in range(13, -1, -1):
                start = today - timedelta(days=day) + timedelta(hours=1 + ji)
                if day == 0:  # today's run: whatever the time of day, it started shortly before now
                    start = now - (3 - ji) * h
                fate = rng.random()
                result = "Failed" if fate < 0.15 else "Warning" if fate < 0.25 else "Success"
                if day == 3 and ji == 1:
                    result = "PartiallySucceeded"  # a value newer than this tool
                attempts = [result] + (
                    ["Success" if rng.random() < 0.7 else "Failed"] if result == "Failed" else []
                )
                for a, res in enumerate(attempts):
                    t0 = start + a * 40 * timedelta(minutes=1)
                    running = day == 0 and ji == 2 and si == 0
                    sess = row(
                        schema.backup_job_sessions,
                        backup_server_uid=server,
                        job_uid=job,
                        job_name=job_name,
                        job_type="Backup",
                        name=f"{job_name}@{t0}",
                        creation_time_utc=t0,
                        end_time_utc=None if running else t0 + 30 * timedelta(minutes=1),
                        state="Working" if running else "Stopped",
                        result="Success" if running else res,
                        is_retry=a > 0,
                    )
                    for vm in vms if a == 0 else vms[:1]:
                        vm_res = res if vm == vms[0] else "Success"
                        if vm == HOSTILE_BACKUP_VM:  # fails once, with markup in its reason; never a point
                            vm_res = "Failed" if day == 1 else "Success"
                        row(
                            schema.backup_task_sessions,
                            job_session_uid=sess,
                            backup_server_uid=server,
                            vm_display_name=vm,
                            vm_uid=f"urn:VMware:Vm:report.{vm}",
                            name=f"{vm}@{t0}",
                            creation_time_utc=t0,
                            end_time_utc=None if running else t0 + 20 * timedelta(minutes=1),
                            state="InProgress" if running else "Completed",
                            result="Success" if running else vm_res,
                            reason=None
                            if vm_res == "Success"
                            else HOSTILE_BACKUP_REASON
                            if vm == HOSTILE_BACKUP_VM
                            else f"Error: {vm_res} on {vm}: the snapshot could not be created because the "
                            "datastore is almost full",
                            total_size=40 * 2**30,
                        )
                        if (
                            vm_res in ("Success", "Warning")
                            and not running
                            and not (ji == 1 and vm == vms[2])
                            and vm != HOSTILE_BACKUP_VM
                        ):
                            point = row(
                                schema.vm_restore_points,
                                backup_server_uid=server,
                                name=f"{vm}@{t0}",
                                vm_display_name=vm,
                                hierarchy_obj_ref=f"urn:VMware:Vm:report.{vm}",
                                creation_time_utc=t0 + 5 * timedelta(minutes=1),
                                deleted_at=now if day > 10 else None,
                            )
                            assert point
                for kind, size in (("vbk" if day % 7 == 0 else "vib", 40 if day % 7 == 0 else 4),):
                    row(
                        schema.backup_files,
                        backup_uid=backup,
                        backup_server_uid=server,
                        name=f"{job_name}{day}.{kind}",
                        file_type=kind,
                        backup_size=size * 2**30,
                        data_size=size * 3 * 2**30,
                        creation_time_utc=start,
                        deleted_at=now if day > 10 else None,
                    )


# Jobs whose newest session is not finished, or finished with a Result we do not know: what each reads
# as everywhere ("running", the State as EM sent it, the unknown Result as EM sent it).
UNKNOWN_RESULT = "PartiallySucceeded"
OUTCOME_CASES = {
    "Waiting Job": "WaitingRepository",  # newest session State=WaitingRepository Result=None
    "Busy Job": "running",  # newest session State=Working, Result=Success: not finished all the same
    "Future Job": UNKNOWN_RESULT,  # State=Stopped, a Result this tool does not know
}


def _job(conn, uid: str, name: str, meta: dict) -> None:
    """The job row a replication session names (its foreign key), added once."""
    if conn.execute(select(schema.jobs.c.uid).where(schema.jobs.c.uid == uid)).first() is None:
        conn.execute(
            insert(schema.jobs).values(uid=uid, name=name, job_type="Replica", placeholder=False, **meta)
        )


def _add_outcome_cases(conn, server: str, meta: dict, now: datetime) -> None:
    def session(key, job, start_h, end_h, state, result, retry=False):
        _job(conn, f"urn:veeam:Job:{job.split()[0].lower()}", job, meta)
        conn.execute(
            insert(schema.replica_job_sessions).values(
                uid=f"urn:veeam:ReplicaJobSession:{key}",
                backup_server_uid=server,
                job_uid=f"urn:veeam:Job:{job.split()[0].lower()}",
                job_name=job,
                name=f"{job}@{key}",
                creation_time_utc=now - timedelta(hours=start_h),
                end_time_utc=None if end_h is None else now - timedelta(hours=end_h),
                state=state,
                result=result,
                is_retry=retry,
                placeholder=False,
                **meta,
            )
        )

    def task(key, session_key, vm, start_h, end_h, state, result):
        conn.execute(
            insert(schema.replica_task_sessions).values(
                uid=f"urn:veeam:ReplicaTaskSession:{key}",
                job_session_uid=f"urn:veeam:ReplicaJobSession:{session_key}",
                backup_server_uid=server,
                vm_display_name=vm,
                name=f"{vm}@{key}",
                creation_time_utc=now - timedelta(hours=start_h),
                end_time_utc=None if end_h is None else now - timedelta(hours=end_h),
                state=state,
                result=result,
                total_size=40 * 2**30,
                **meta,
            )
        )

    session("waiting-1", "Waiting Job", 5, 4.5, "Stopped", "Success")
    task("waiting-1", "waiting-1", "waiting-vm", 5, 4.6, "Completed", "Success")
    session("waiting-2", "Waiting Job", 1, None, "WaitingRepository", "None")
    task("waiting-2", "waiting-2", "waiting-vm", 1, None, "Pending", "None")
    session("busy-1", "Busy Job", 2, None, "Working", "Success")
    task("busy-1", "busy-1", "busy-vm", 2, None, "InProgress", "None")
    session("future-1", "Future Job", 3, 2.5, "Stopped", UNKNOWN_RESULT)
    task("future-1", "future-1", "future-vm", 3, 2.6, "Completed", UNKNOWN_RESULT)


@pytest.fixture
def warehouse(db_url):
    _load(db_url)
    return db_url


@pytest.fixture(scope="module")
def sqlite_warehouse(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'w.db'}"
    _load(url)
    return url


def _run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


# ---------------------------------------------------------------------- table, csv, json
def test_csv_of_each_view_has_its_columns_and_every_row(warehouse):
    eng = db.engine(warehouse)
    for view in report.VIEWS:
        out = _run("report", "--db", warehouse, "--format", "csv", "--view", view)
        rows = list(csv.reader(io.StringIO(out)))
        with eng.connect() as conn:
            assert rows[0] == report.view_columns(conn, view)
            assert len(rows) - 1 == conn.execute(text(f"SELECT COUNT(*) FROM {view}")).scalar() > 0
    failures = list(
        csv.DictReader(
            io.StringIO(_run("report", "--db", warehouse, "--format", "csv", "--view", "v_replica_failures"))
        )
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", failures[0]["occurred_utc"])
    assert failures == sorted(failures, key=lambda r: r["occurred_utc"], reverse=True)
    assert any(r["vm_display_name"] == HOSTILE_VM for r in failures)
    eng.dispose()


def test_json_view_and_summary(warehouse):
    runs = json.loads(
        _run("report", "--db", warehouse, "--format", "json", "--view", "v_replica_job_runs", "--limit", "5")
    )
    assert len(runs) == 5 and set(runs[0]) >= {"session_uid", "duration_s", "total_bytes", "result"}
    assert isinstance(runs[0]["total_bytes"], int)
    daily = json.loads(_run("report", "--db", warehouse, "--format", "json", "--view", "v_replica_job_daily"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", daily[0]["day_utc"])
    assert all(d["success_rate"] is None or 0 <= d["success_rate"] <= 1 for d in daily)
    s = json.loads(_run("report", "--db", warehouse, "--format", "json"))
    assert set(s["tiles"]) == {
        "vms_protected",
        "rpo_breaches",
        "rpo_amber",
        "success_rate_7d",
        "gb_last_24h",
        "tasks_last_24h",
        "backup_machines",
        "backup_machines_protected",
        "backup_agent_computers",
        "backup_rpo_breaches",
        "backup_rpo_warnings",
        "backup_success_rate_7d",
        "repositories",
        "repositories_low",
        "repositories_unknown_capacity",
    }
    assert s["tiles"]["vms_protected"] == len(s["vms"]) > 0
    t = s["tiles"]
    assert t["backup_machines"] == len(s["backup_machines"]) > t["backup_machines_protected"] > 0
    agents = [m for m in s["backup_machines"] if m["kind"] == "agent"]
    assert t["backup_agent_computers"] == len(agents) > 0
    assert t["backup_rpo_breaches"] >= 2  # VMs without any restore point
    assert 0 < t["backup_success_rate_7d"] < 1
    with db.engine(warehouse).connect() as conn:
        repositories = conn.execute(select(schema.repositories.c.capacity)).scalars().all()
    assert t["repositories"] == len(repositories) and t["repositories_low"] >= 1
    assert t["repositories_unknown_capacity"] == sum(1 for capacity in repositories if capacity is None) >= 2
    assert s["tiles"]["rpo_breaches"] >= 1  # the hostile VM never succeeded
    assert 0 < s["tiles"]["success_rate_7d"] <= 1 and s["tiles"]["gb_last_24h"] > 0
    assert s["vms"][0]["rpo_status"] == "red" and len(s["days"]) == 14


def test_table_summary_and_view(warehouse):
    out = _run("report", "--db", warehouse)
    assert "VMs protected:" in out and "RPO breaches:" in out and "Newest replication failures" in out
    assert "Machines backed up:" in out and "backup RPO breaches:" in out and "Newest backup failures" in out
    assert "agent computers)" in out and "VMs backed up" not in out
    # a terminal shows text as it is (not escaped), clipped to its column
    assert "<svg onload=alert(" in out and "Repositories, least free space first" in out
    assert "<script>alert(" in out
    out = _run("report", "--db", warehouse, "--view", "v_replica_transfer_daily")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["backup_server_uid", "backup_server_name", "day_utc"]
    assert set(lines[1]) <= {"-", " "} and len(lines) > 3


def test_terminal_summary_fits_100_columns_and_writes_sizes_as_the_page_does(sqlite_warehouse, tmp_path):
    out = _run("report", "--db", sqlite_warehouse)
    too_wide = [line for line in out.splitlines() if terminal._width(line) > terminal.WIDTH]
    assert terminal.WIDTH == 100 and not too_wide, too_wide
    # sizes right-aligned, "unknown" capacity too: every figure of a column ends where its column ends
    repos = _table_rows(out, "repository ")
    unit = next(k for k in repos[0] if k.startswith("capacity ")).split()[1]
    assert any(r[f"capacity {unit}"] == "unknown" for r in repos)
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("repository "))
    spans = [m.span() for m in re.finditer(r"-+", lines[at + 1])]
    for name, (_, end) in zip([lines[at][a:b].strip() for a, b in spans], spans, strict=True):
        if name.startswith(("capacity", "free", "7 d")):
            assert all(line[end - 1] != " " for line in lines[at + 2 : at + 2 + len(repos)]), name
    # the same unit system as the page: the same figure and unit for the source size of 24 h
    page = tmp_path / "r.html"
    _run("report", "--db", sqlite_warehouse, "--format", "html", "--out", str(page))
    tile = re.search(
        r'id="tile-gb".*?class="value">([\d,.]+)<small>(GB|TB)</small>', page.read_text(), re.DOTALL
    )
    assert tile and f"24 h: {tile.group(1)} {tile.group(2)} in " in out, (tile and tile.groups(), out[:800])
    table = re.search(r'<table id="repositories-table">.*?</table>', page.read_text(), re.DOTALL).group(0)
    assert f"free / capacity ({unit})" in table


def test_csv_without_a_view_is_a_usage_error_naming_the_views(sqlite_warehouse):
    """CSV is one table per invocation: without --view it says which views there are (exit 2)."""
    done = cli("report", "--db", sqlite_warehouse, "--format", "csv")
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "--view" in lines[0] and all(view in lines[0] for view in report.VIEWS)


def test_json_without_a_view_holds_every_section(sqlite_warehouse):
    s = json.loads(_run("report", "--db", sqlite_warehouse, "--format", "json"))
    assert set(s) == {
        "generated_utc",
        "last_load_utc",
        "rpo_hours",
        "backup_rpo_hours",
        "repository_low_free_pct",
        "days",
        "tiles",
        "jobs",
        "backup_jobs",
        *summary.READERS,
    }
    assert set(summary.READERS) >= {
        "daily",
        "source_size",
        "vms",
        "failures",
        "backup_daily",
        "backup_machines",
    }
    # EM's TotalSize is the VMs' source size: no key calls it a transfer
    assert not any("transfer" in key for key in s) and not any("transfer" in key for key in s["tiles"])
    for section in ("jobs", "backup_jobs", *summary.READERS):
        assert s[section], section
    # view rows keep the view's column names
    eng = db.engine(sqlite_warehouse)
    with eng.connect() as conn:
        assert set(s["daily"][0]) == set(report.view_columns(conn, "v_replica_job_daily"))
        assert set(s["failures"][0]) == set(report.view_columns(conn, "v_replica_failures"))
        assert set(s["vms"][0]) == set(report.view_columns(conn, "v_vm_replica_status")) | {
            "last_task_status"
        }
    eng.dispose()


def _table_rows(text_block: str, header_start: str) -> list[dict]:
    """The rows of the aligned table whose header line starts with `header_start` (after indent),
    split at the column boundaries the dashes line gives."""
    lines = text_block.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(header_start))
    spans = [m.span() for m in re.finditer(r"-+", lines[at + 1])]
    names = [lines[at][a:b].strip() for a, b in spans]
    rows = []
    for line in lines[at + 2 :]:
        if not line.strip() or line.strip() == "(no rows)":
            break
        rows.append(
            {
                n: line[a : b if i < len(spans) - 1 else None].strip()
                for i, (n, (a, b)) in enumerate(zip(names, spans, strict=True))
            }
        )
    return rows


def test_unfinished_and_unknown_outcomes_read_the_same_everywhere(warehouse):
    """A session not Stopped/Completed reads "running" (or its State) whatever its Result says; a Result
    we do not know is shown as sent and never counted as success; EM's raw "None" is never an outcome."""
    out = _run("report", "--db", warehouse)
    jobs = {r["job"]: r for r in _table_rows(out, "job ")}
    for job, shown in OUTCOME_CASES.items():
        assert jobs[job]["last"] == shown, (job, jobs[job])
    assert jobs["Future Job"]["success"] == "0.0%"  # a finished run whose result is unknown: not a success
    assert not re.search(r"\bNone\b", out), out

    s = json.loads(_run("report", "--db", warehouse, "--format", "json"))
    by_name = {j["job_name"]: j for j in s["jobs"]}
    for job, shown in OUTCOME_CASES.items():
        assert by_name[job]["last_status"] == shown
    assert by_name["Waiting Job"]["last_state"] == "WaitingRepository"
    assert by_name["Waiting Job"]["last_result"] is None and by_name["Busy Job"]["last_result"] is None
    assert by_name["Future Job"]["last_result"] == UNKNOWN_RESULT
    assert by_name["Future Job"]["success_rate"] == 0.0 and by_name["Future Job"]["successes"] == 0
    assert by_name["Future Job"]["other"] == 1
    assert all(j["last_status"] not in (None, "None") for j in s["jobs"])
    vms = {v["vm_display_name"]: v for v in s["vms"]}
    assert vms["busy-vm"]["last_task_status"] == "running"
    assert (
        vms["waiting-vm"]["last_task_status"] == "Pending" and vms["waiting-vm"]["last_result"] == "Success"
    )
    assert vms["future-vm"]["last_task_status"] == UNKNOWN_RESULT and vms["future-vm"]["rpo_status"] == "red"

    # the terminal table of a view shows the outcome; its CSV keeps what EM sent (the BI contract)
    runs = {
        r["session_name"]: r
        for r in _table_rows(_run("report", "--db", warehouse, "--view", "v_replica_job_runs"), "job_uid")
    }
    assert runs["Waiting Job@waiting-2"]["result"] == "WaitingRepository"
    assert runs["Busy Job@busy-1"]["result"] == "running"
    assert runs["Future Job@future-1"]["result"] == UNKNOWN_RESULT
    assert runs["Waiting Job@waiting-1"]["result"] == "Success"
    raw = {
        r["session_name"]: r
        for r in csv.DictReader(
            io.StringIO(_run("report", "--db", warehouse, "--format", "csv", "--view", "v_replica_job_runs"))
        )
    }
    assert raw["Waiting Job@waiting-2"]["result"] == "None" and raw["Busy Job@busy-1"]["result"] == "Success"

    html = report.render(db.engine(warehouse), "html")
    for job, shown in OUTCOME_CASES.items():
        row = re.search(rf"<tr><td>{job}<small.*?</tr>", html).group(0).replace("<wbr>", "")
        cls = "other" if shown == UNKNOWN_RESULT else "running"
        assert f'<span class="badge {cls}" title="{shown}">{shown}</span>' in row, row
    assert ">None<" not in html


def test_report_usage_errors(sqlite_warehouse, tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["report", "--db", sqlite_warehouse, "--format", "html"])
    assert r.exit_code == 2 and "--out" in r.output
    r = runner.invoke(main, ["report", "--db", sqlite_warehouse, "--view", "nope"])
    assert r.exit_code == 2
    r = runner.invoke(
        main,
        [
            "report",
            "--db",
            sqlite_warehouse,
            "--format",
            "html",
            "--out",
            str(tmp_path / "x.html"),
            "--view",
            "v_replica_failures",
        ],
    )
    assert r.exit_code == 2
    r = runner.invoke(main, ["report", "--db", f"sqlite:///{tmp_path / 'empty.db'}"])
    assert r.exit_code == 2 and "migrate" in r.output


def test_cli_view_choices_are_the_report_views():
    report_cmd = main.commands["report"]
    choices = next(p.type.choices for p in report_cmd.params if p.name == "view")
    assert list(choices) == list(report.VIEWS)


def test_out_writes_a_file(sqlite_warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("VEEAM_ETL_DB", sqlite_warehouse)
    out = tmp_path / "runs.csv"
    result = CliRunner().invoke(
        main, ["report", "--format", "csv", "--view", "v_replica_job_runs", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").startswith("job_uid,job_name,")


# ---------------------------------------------------------------------- HTML in a real browser
def _chromium() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )
    if not found:
        pytest.fail("Debian's chromium is required for the HTML report test: apt-get install -y chromium")
    return found


def _browse(
    page: Path, profile: Path, *extra: str, width: int = 1600, height: int = 1000
) -> subprocess.CompletedProcess:
    """Chromium headless on `page` in a window of `width` x `height` CSS px, with a fresh profile."""
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--mute-audio",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        *extra,
        page.as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=profile)


PROBE = (Path(__file__).with_name("layout_probe.js")).read_text(encoding="utf-8")


def _probe(page: Path, tmp: Path, width: int) -> dict:
    """Lay `page` out at `width` px in Chromium and return what tests/e2e/layout_probe.js measured
    (injected into a copy: the page itself carries no script)."""
    probed = tmp / f"probe-{width}-{page.name}"
    probed.write_text(
        page.read_text(encoding="utf-8").replace("</body>", f"<script>{PROBE}</script></body>"),
        encoding="utf-8",
    )
    profile = tmp / f"profile-probe-{width}-{page.stem}"
    profile.mkdir()
    done = _browse(probed, profile, "--dump-dom", width=width)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not CONSOLE.search(done.stderr), done.stderr[-3000:]
    found = re.search(r'<pre id="layout-probe">(.*?)</pre>', done.stdout, re.DOTALL)
    assert found, done.stdout[-2000:]
    return json.loads(unescape(found.group(1)))


def _screenshot(page: Path, tmp: Path, width: int, height: int, name: str) -> Path:
    """The whole page (`height` px tall) at `width` px as test-artifacts/`name`; no console error."""
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / name
    shot.unlink(missing_ok=True)
    profile = tmp / f"profile-shot-{name}"
    profile.mkdir()
    done = _browse(page, profile, f"--screenshot={shot}", width=width, height=height)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not CONSOLE.search(done.stderr), done.stderr[-3000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    return shot


def _assert_lays_out_cleanly(found: dict) -> None:
    """Nothing wider than the window, nothing cut off, every chart's text inside its viewBox, legible
    (at least 10.5 CSS px as rendered) and not overlapping other text."""
    width = found["width"]
    assert found["inner_width"] == width
    assert found["scroll_width"] <= width, f"horizontal overflow at {width} px: {found['scroll_width']}"
    assert found["outside"] == [], found["outside"]
    assert found["clipped"] == [], found["clipped"]
    for chart in found["charts"]:
        assert chart["outside_viewbox"] == [], (width, chart["id"], chart["outside_viewbox"])
        assert chart["overlaps"] == [], (width, chart["id"], chart["overlaps"])
        assert chart["min_font_px"] >= 10.5, (width, chart["id"], chart["min_font_px"])
        assert chart["title"] and chart["visible_title"] == [chart["title"]], chart


def _assert_uses_the_width(found: dict) -> None:
    """Two columns from 1280 px that share the width and end at about the same height (no screen of
    empty space under one of them: moving the section at their boundary to the other column would not
    make them more even), one below; no line broken inside a word (a host name breaks after a dot);
    no two chips of a list alike."""
    width, columns = found["width"], found["columns"]
    assert found["mid_word_breaks"] == [], (width, found["mid_word_breaks"])
    assert found["duplicate_chips"] == [], (width, found["duplicate_chips"])
    if width < 1280:
        assert len(columns) == 1, (width, columns)
        return
    assert len(columns) == 2, (width, [c["left"] for c in columns])
    left, right = columns
    box = found["columns_box"]
    assert left["left"] - box["left"] < 2 and box["right"] - right["right"] < 2  # the whole width
    assert abs((left["right"] - left["left"]) - (right["right"] - right["left"])) < 2  # shared alike
    gap = left["bottom"] - right["bottom"]
    boundary = left["sections"][-1] if gap > 0 else right["sections"][0]
    moved = boundary["height"] + 18  # a section and the gap under it (CSS --gap)
    assert abs(gap) <= abs(abs(gap) - 2 * moved) + 1, (width, gap, boundary, columns)
    # and the page orders the sections so that the best split leaves little empty: at most the
    # height of the shortest section under the shorter column
    shortest = min(x["height"] for c in columns for x in c["sections"])
    assert abs(gap) <= shortest, (width, gap, shortest, columns)


def _markup(html: str) -> tuple[set[str], set[str]]:
    """Element and attribute names a browser's parser sees (escaped text is neither)."""
    tags: set[str] = set()
    attributes: set[str] = set()

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.add(tag.lower())
            attributes.update(name.lower() for name, _ in attrs)

    Collect().feed(html)
    return tags, attributes


CONSOLE = re.compile(r":CONSOLE[:(]|Uncaught|CONSOLE\(")


def test_browser_harness_sees_console_errors(tmp_path):
    """The check below is only worth something if it catches a page that does throw."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><p>x</p><script>throw new Error('boom')</script>", encoding="utf-8")
    done = _browse(bad, tmp_path, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    assert CONSOLE.search(done.stderr) and "boom" in done.stderr


def test_the_layout_probe_sees_overflow_clipping_and_stray_labels(tmp_path):
    """The layout checks below are only worth something if they catch a page that is wrong."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><body style="margin:0"><div style="width:1400px">wide</div>'
        '<div id="cut" style="width:100px;overflow:hidden;white-space:nowrap">12 attention needed now</div>'
        '<svg class="chart" id="c" viewBox="0 0 200 100" style="width:100px"><title>t</title>'
        '<text x="-5" y="20" class="tick">ab</text><text x="0" y="20" class="tick">cd</text>'
        '<text x="150" y="60" style="font-size:8px">tiny</text></svg></body>',
        encoding="utf-8",
    )
    found = _probe(bad, tmp_path, 1024)
    assert found["scroll_width"] > found["width"] == 1024
    assert any(x.startswith("div ") for x in found["outside"])
    assert any(x.startswith("div#cut") for x in found["clipped"])
    (chart,) = found["charts"]
    assert chart["outside_viewbox"] == ["ab"] and chart["overlaps"] == ["ab / cd"]
    assert chart["min_font_px"] < 10.5 and chart["visible_title"] == []

    worse = tmp_path / "worse.html"
    worse.write_text(
        '<!DOCTYPE html><body style="margin:0"><div class="columns" style="column-count:2">'
        '<section id="a" style="height:900px">a</section><section id="b" style="height:100px;break-before:column">'
        'b</section></div><table style="width:120px;table-layout:fixed"><tr>'
        '<td style="overflow-wrap:anywhere">vbr01.lab.local</td></tr></table>'
        '<div class="chips"><span class="chip">vm01</span><span class="chip">vm01</span></div></body>',
        encoding="utf-8",
    )
    found = _probe(worse, tmp_path, 1440)
    assert [c["bottom"] for c in found["columns"]] == [900, 100]
    with pytest.raises(AssertionError):  # 800 px empty under one column
        _assert_uses_the_width(found)
    assert found["mid_word_breaks"] == ["td 'vbr01.lab.local' at 'a|l' of 'vbr01.lab.local'"]
    assert found["duplicate_chips"] == ["chips: vm01"]


WIDTHS = (1024, 1280, 1440, 1920)  # 1280: the narrowest two-column layout


def test_html_report_lays_out_cleanly_in_headless_chromium(sqlite_warehouse, tmp_path):
    page = tmp_path / "veeam-report.html"
    result = CliRunner().invoke(
        main, ["report", "--db", sqlite_warehouse, "--format", "html", "--out", str(page)]
    )
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")

    # self-contained and offline: no script, no external resource of any kind
    tags, attributes = _markup(html)
    assert not tags & {
        "script",
        "link",
        "img",
        "iframe",
        "object",
        "embed",
        "base",
        "image",
        "use",
        "foreignobject",
    }
    assert not attributes & {"src", "href", "xlink:href", "srcset", "action", "onerror", "onload"}
    assert "url(" not in html and "@import" not in html and "@font-face" not in html
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) <= {"http://www.w3.org/2000/svg"}
    # untrusted names are escaped (and may break after their punctuation: <wbr> between escaped parts)
    assert HOSTILE_VM not in html and HOSTILE_JOB not in html and HOSTILE_BACKUP_VM not in html
    html = html.replace("<wbr>", "")
    assert "&lt;script&gt;alert(&quot;vm&quot;)&lt;/script&gt;&amp;&quot;vm" in html
    assert "&lt;/td&gt;&lt;b&gt;reason&lt;/b&gt;" in html
    assert "&lt;svg onload=alert(&quot;bk&quot;)&gt;&amp;vm" in html and HOSTILE_BACKUP_REASON not in html
    # TotalSize is the VMs' source size: never called "transferred" on the page
    assert "transferred" not in re.sub(r"no transferred bytes", "", html).lower()
    assert "Source size" in html and "not bytes moved" in html

    s = json.loads(report.render(db.engine(sqlite_warehouse), "json"))
    shots = []
    for width in WIDTHS:
        found = _probe(page, tmp_path, width)
        _assert_lays_out_cleanly(found)
        charts_seen = {c["id"]: c for c in found["charts"]}
        _assert_uses_the_width(found)
        full = "" if width >= 1280 else "-full"  # a column's charts are drawn wider for one column
        rate_id, matrix_id, backup_id, size_id, age, trend = (
            f"chart-{c}{full}"
            for c in (
                "success-rate",
                "success-matrix",
                "backup-matrix",
                "source-size",
                "backup-age",
                "repo-trend",
            )
        )
        assert set(charts_seen) == {rate_id, matrix_id, "chart-rpo", size_id, backup_id, age, trend}
        for chart in charts_seen.values():
            assert chart["empty"] == "false" and chart["empty_text"] == []
        # units: on the axes, in every mark's tooltip
        rate, matrix, size = charts_seen[rate_id], charts_seen[matrix_id], charts_seen[size_id]
        assert "(UTC)" in rate["axis_titles"][0] and "(%" in rate["axis_titles"][1]
        assert rate["y_ticks"] and all(re.fullmatch(r"\d+%", t) for t in rate["y_ticks"])
        assert size["y_ticks"] and all(re.fullmatch(r"[\d,.]+", t) for t in size["y_ticks"])
        assert len(set(size["y_ticks"])) == len(size["y_ticks"])  # no repeated tick (0, 0, 1, 1)
        assert "(UTC)" in size["axis_titles"][0] and re.search(r"\((GB|TB)\)", size["axis_titles"][1])
        assert size["mark_tips"] and all(
            re.search(r"\d (GB|TB), \d+ tasks ended$", t) for t in size["mark_tips"]
        )
        assert "(UTC)" in matrix["axis_titles"][-1] and "(%)" in matrix["title"]
        assert len(matrix["mark_tips"]) == len(s["jobs"]) * 14
        assert all(re.search(r"%|no run|no finished run", t) for t in matrix["mark_tips"])
        assert all(re.search(r"\d+ VMs \(\d+%\)$", t) for t in charts_seen["chart-rpo"]["mark_tips"])
        backup_matrix, ages, repo = charts_seen[backup_id], charts_seen[age], charts_seen[trend]
        assert "(UTC)" in backup_matrix["axis_titles"][-1] and "(%)" in backup_matrix["title"]
        assert len(backup_matrix["mark_tips"]) == len(s["backup_jobs"]) * 14
        assert any("recovered by a retry" in t for t in backup_matrix["mark_tips"])
        assert all(re.search(r"%|no run|no finished run", t) for t in backup_matrix["mark_tips"])
        assert ages["axis_titles"][1] == "machines" and "restore point" in ages["axis_titles"][0]
        assert ages["y_ticks"] and all(re.fullmatch(r"\d+", t) for t in ages["y_ticks"])  # whole machines
        assert ages["mark_tips"] and all(
            re.search(r"^(ok|warning|breach), .*: \d+ machines$", t) for t in ages["mark_tips"]
        )
        assert "(UTC)" in repo["axis_titles"][0] and "(% of capacity)" in repo["axis_titles"][1]
        assert repo["mark_tips"] and all(re.search(r"\d+\.\d% free$", t) for t in repo["mark_tips"])
        tiles = {t["id"]: t["text"] for t in found["tiles"]}
        assert set(tiles) == {
            "tile-vms",
            "tile-breaches",
            "tile-success",
            "tile-gb",
            "tile-backup-machines",
            "tile-backup-breaches",
            "tile-backup-success",
            "tile-repos-low",
        }
        assert re.search(r"\d(\.\d)?\s*%", tiles["tile-success"]) and re.search(r"(GB|TB)", tiles["tile-gb"])
        assert re.search(r"\d(\.\d)?\s*%", tiles["tile-backup-success"])
        assert "unknown capacity" in tiles["tile-repos-low"]
        shots.append(_screenshot(page, tmp_path, width, found["height"], f"report-{width}.png"))
    shutil.copy(page, ARTIFACTS / "report.html")

    tags, attributes = _markup(html)
    assert html.count('class="bar"') >= 10 and html.count('class="segment"') >= 2
    assert re.search(r'id="tile-breaches"[^>]*>.*?class="value">[1-9]', html, re.DOTALL)
    assert '<table id="failures-table">' in html and "later success" in html
    assert len(re.findall(r'<path d="M', html)) >= 4  # one line per job
    assert '<table id="backup-failures-table">' in html and "recovered by retry" in html
    assert '<table id="backup-jobs-table">' in html and '<table id="repositories-table">' in html
    assert "unknown" in re.search(r'<table id="repositories-table">.*?</table>', html, re.DOTALL).group(0)
    assert re.search(r'id="tile-backup-breaches"[^>]*>.*?class="value">[1-9]', html, re.DOTALL)


def test_an_empty_warehouse_says_there_is_no_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    eng = db.engine(url)
    db.migrate(eng)
    page = report.write(eng, "html", tmp_path / "empty.html")
    html = page.read_text(encoding="utf-8")
    assert "last load never" in html
    for width in (1024, 1440):
        found = _probe(page, tmp_path, width)
        _assert_lays_out_cleanly(found)
        assert len(found["charts"]) == 7
        for chart in found["charts"]:  # says so, and draws no axis ticks (the old page drew 1, 1, 0, 0, 0)
            assert chart["empty"] == "true" and chart["empty_text"] == [charts.NO_DATA], chart
            assert chart["ticks"] == [] and chart["axis_titles"] == [] and chart["mark_tips"] == []
        for tile in found["tiles"]:
            assert charts.NO_DATA in tile["text"] and "–" in tile["text"], tile
    _screenshot(page, tmp_path, 1440, found["height"], "report-empty.png")
    for section in (
        "jobs",
        "rpo",
        "failures",
        "backup-jobs",
        "backup-machines",
        "repositories",
        "backup-failures",
    ):
        body = re.search(rf'<section id="{section}">.*?</section>', html, re.DOTALL).group(0)
        assert charts.NO_DATA in body, section

    s = json.loads(report.render(eng, "json"))
    assert s["tiles"] == {
        "vms_protected": 0,
        "rpo_breaches": 0,
        "rpo_amber": 0,
        "success_rate_7d": None,
        "gb_last_24h": 0.0,
        "tasks_last_24h": 0,
        "backup_machines": 0,
        "backup_machines_protected": 0,
        "backup_agent_computers": 0,
        "backup_rpo_breaches": 0,
        "backup_rpo_warnings": 0,
        "backup_success_rate_7d": None,
        "repositories": 0,
        "repositories_low": 0,
        "repositories_unknown_capacity": 0,
    }
    text_report = report.render(eng, "table")
    assert "(no rows)" in text_report and "No data yet" in text_report
    assert report.render(eng, "csv", "v_replica_failures").startswith("task_uid,occurred_utc,")
    eng.dispose()


def test_demo_writes_the_html_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main,
        ["demo", "--db", f"sqlite:///{tmp_path / 'demo.db'}", "--report", "wall.html"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("report: "))
    path = Path(line.removeprefix("report: "))
    assert path.is_absolute() and path == (tmp_path / "wall.html").resolve()
    html = path.read_text(encoding="utf-8")
    assert 'id="chart-source-size"' in html
    # after a first load every repository has one reading: the trend chart says so, not a column of dots
    trend = re.search(r'<svg id="chart-repo-trend".*?</svg>', html, re.DOTALL).group(0)
    assert (
        'data-empty="true"' in trend and "Not a trend yet" in trend and "one reading per repository" in trend
    )
    # the demo's estate has one machine name on two backup servers, and host names in every table
    for width in (1024, 1440, 1920):
        found = _probe(path, tmp_path, width)
        _assert_lays_out_cleanly(found)
        _assert_uses_the_width(found)
        _screenshot(path, tmp_path, width, found["height"], f"report-demo-{width}.png")
