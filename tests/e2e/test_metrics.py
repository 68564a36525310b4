"""`veeam-etl metrics`: every family with its values on a hand-built warehouse (SQLite and PostgreSQL),
things of one name kept apart, `--out` atomic, `--listen` serving /metrics over a real socket and
collecting on every scrape, a failing scrape answered 500, and usage errors."""

from __future__ import annotations

import os
import re
import select
import signal
import stat
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, text
from sqlalchemy.exc import OperationalError

from etl import db, metrics, schema
from etl.errors import ConfigError, VeeamEtlError
from etl.metrics import collection, serve
from etl.report.read import read_view
from etl.simulator import World
from helpers import add_backup_estate, cli, cli_env, truth_rows

H = timedelta(hours=1)
GIB = 2**30
SERVER = "urn:veeam:BackupServer:bi"  # add_backup_estate's backup server, named vbr-bi, source bi-example
TWIN = "urn:veeam:BackupServer:bi-twin"  # another backup server named vbr-bi in the same source
BI = {"source": "bi-example", "backup_server": "vbr-bi"}


def parse(body: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, its labels): value} of a text exposition."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(samples: dict, name: str) -> list[dict[str, str]]:
    return [dict(labels) for n, labels in samples if n == name]


def _meta(now: datetime) -> dict:
    return schema.meta_values("bi-example", 1, now)


def build(url: str) -> datetime:
    """A migrated warehouse holding docs/bi.md's backup example (add_backup_estate), an agent computer, a
    replication job whose failed run a retry fixed and whose newest run failed, a twin backup server and
    twin VMs of one name, and three loader runs of source em-a (succeeded, failed, still running).
    Returns its "now"."""
    eng = db.engine(url)
    db.migrate(eng)
    now = datetime.now(UTC).replace(microsecond=0)
    add_backup_estate(eng, now)
    meta = _meta(now)
    with eng.begin() as conn:
        conn.execute(
            insert(schema.etl_runs),
            [
                dict(source="em-a", started_at=now - 2 * H, finished_at=now - 2 * H + timedelta(seconds=30),
                     status="succeeded", mode="full", rows_inserted=100, rows_updated=5, requests=40,
                     new_values=2, error=None),
                dict(source="em-a", started_at=now - H, finished_at=now - H + timedelta(seconds=10),
                     status="failed", mode="incremental", rows_inserted=0, rows_updated=0, requests=3,
                     new_values=0, error="Enterprise Manager answered 503\n   at /api/query " + "x" * 300),
                dict(source="em-a", started_at=now - timedelta(minutes=1), finished_at=None, status="running",
                     mode="incremental", rows_inserted=7, rows_updated=0, requests=1, new_values=0, error=None),
            ],
        )  # fmt: skip
        conn.execute(insert(schema.backup_servers).values(uid=TWIN, name="vbr-bi", placeholder=False, **meta))
        conn.execute(
            insert(schema.repositories),
            [
                dict(uid="urn:veeam:Repository:twin", backup_server_uid=TWIN, name="BI Repo", kind="LinuxLocal",
                     capacity=2000 * GIB, free_space=1500 * GIB, placeholder=False, **meta),
                dict(uid="urn:veeam:Repository:cloud", backup_server_uid=SERVER, name="Cloud", kind="Cloud",
                     capacity=-1, free_space=-1, placeholder=False, **meta),
            ],
        )  # fmt: skip
        for ref in ("a", "b"):  # two VMs called twin on one backup server
            conn.execute(
                insert(schema.vm_restore_points).values(
                    uid=f"urn:veeam:VmRestorePoint:twin-{ref}",
                    restore_point_uid="urn:veeam:RestorePoint:bi",
                    backup_server_uid=SERVER,
                    name="twin@x",
                    vm_display_name="twin",
                    hierarchy_obj_ref=f"urn:VMware:Vm:{ref}.twin",
                    creation_time_utc=now - 2 * H,
                    placeholder=False,
                    **meta,
                )
            )
        conn.execute(  # an agent computer with a restore point 2 hours old
            insert(schema.agent_restore_points).values(
                uid="urn:veeam:AgentRestorePoint:laptop01", restore_point_uid="urn:veeam:RestorePoint:bi",
                backup_server_uid=SERVER, name="laptop01@x", computer_name="laptop01",
                creation_time_utc=now - 2 * H, placeholder=False, **meta,
            )
        )  # fmt: skip
        job = "urn:veeam:Job:bi-replica"
        conn.execute(
            insert(schema.jobs).values(uid=job, backup_server_uid=SERVER, name="BI Replica", job_type="Replica",
                                       placeholder=False, **meta)
        )  # fmt: skip
        sessions = [  # uid, start, end, result, retry, failure message
            ("r1", now - 30 * H, now - 29.5 * H, "Failed", False, "first attempt failed"),
            ("r2", now - 29 * H, now - 28.5 * H, "Success", True, None),
            ("r3", now - 2 * H, now - 1.5 * H, "Failed", False, "Error: no space\n  left on datastore"),
        ]
        for uid, start, end, result, retry, message in sessions:
            conn.execute(
                insert(schema.replica_job_sessions).values(
                    uid=f"urn:veeam:ReplicaJobSession:{uid}", backup_server_uid=SERVER, job_uid=job,
                    job_name="BI Replica", name=f"BI Replica@{uid}", creation_time_utc=start, end_time_utc=end,
                    state="Stopped", result=result, is_retry=retry, failure_message=message, placeholder=False,
                    **meta,
                )
            )  # fmt: skip
        conn.execute(
            insert(schema.replicas).values(uid="urn:veeam:Replica:bi", backup_server_uid=SERVER, name="BI Replica",
                                           placeholder=False, **meta)
        )  # fmt: skip
        conn.execute(
            insert(schema.vm_replica_points).values(
                uid="urn:veeam:VmReplicaPoint:bi", backup_server_uid=SERVER, replica_uid="urn:veeam:Replica:bi",
                vm_display_name="rep-vm", creation_time_utc=now - 28.5 * H, placeholder=False, **meta,
            )
        )  # fmt: skip
        conn.execute(
            insert(schema.replica_task_sessions).values(
                uid="urn:veeam:ReplicaTaskSession:bi", job_session_uid="urn:veeam:ReplicaJobSession:r2",
                backup_server_uid=SERVER, vm_display_name="rep-vm", name="rep-vm@r2",
                creation_time_utc=now - 29 * H, end_time_utc=now - 28.5 * H, state="Completed",
                result="Success", total_size=GIB, **meta,
            )
        )  # fmt: skip
    eng.dispose()
    return now


def _near(got: float | None, expected: float, slack: float = 300) -> bool:
    """Ages are read by the database's clock a moment after the test's own."""
    return got is not None and expected <= got <= expected + slack


def test_every_family_with_its_values(db_url):
    now = build(db_url)
    eng = db.warehouse(db_url, mode="read")
    body = metrics.exposition(eng).decode()
    eng.dispose()
    m = parse(body)

    # every declared family is there, and nothing else
    assert {name for name, _ in m} == set(metrics.BY_NAME)

    # machines (backup): a fresh point, an old one, none; the RPO is the default 24 h
    fresh = {**BI, "machine": "vm-fresh", "side": "backup", "kind": "vm"}
    old = {**fresh, "machine": "vm-old"}
    none = {**fresh, "machine": "vm-none"}
    assert _near(value(m, "veeam_machine_restore_point_age_seconds", **fresh), 23 * 3600)
    assert _near(value(m, "veeam_machine_restore_point_age_seconds", **old), 49 * 3600)
    assert value(m, "veeam_machine_restore_point_age_seconds", **none) is None  # absent: no point
    assert [value(m, "veeam_machine_rpo_breach", **vm) for vm in (fresh, old, none)] == [0, 1, 1]
    assert value(m, "veeam_machine_rpo_seconds", **fresh) == 86400
    agent = {**fresh, "machine": "laptop01", "kind": "agent"}
    assert _near(value(m, "veeam_machine_restore_point_age_seconds", **agent), 2 * 3600)
    assert value(m, "veeam_machine_rpo_breach", **agent) == 0
    # two VMs called twin on one backup server: told apart by the view's vm_key, only they
    twins = [s for s in series(m, "veeam_machine_rpo_breach") if s["machine"] == "twin"]
    assert sorted(t["machine_ref"] for t in twins) == ["urn:VMware:Vm:a.twin", "urn:VMware:Vm:b.twin"]
    assert all(
        "machine_ref" not in s for s in series(m, "veeam_machine_rpo_breach") if s["machine"] != "twin"
    )
    # machines (replication): judged on the last successful task, 28.5 h ago
    rep = {**BI, "machine": "rep-vm", "side": "replication", "kind": "vm"}
    assert _near(value(m, "veeam_machine_restore_point_age_seconds", **rep), 28.5 * 3600)
    assert value(m, "veeam_machine_rpo_breach", **rep) == 1
    with db.engine(db_url).connect() as conn:
        machines = conn.scalar(text("SELECT count(*) FROM v_vm_backup_status"))
        machines += conn.scalar(text("SELECT count(*) FROM v_vm_replica_status"))
    assert len(series(m, "veeam_machine_rpo_breach")) == machines

    # the backup job: run s2 failed, its retry s3 succeeded (one run, Success); s4 still runs
    job = {**BI, "job": "BI Backup", "side": "backup"}
    info = [s for s in series(m, "veeam_job_last_run_info") if s["job"] == "BI Backup"]
    assert info == [{**job, "job_type": "Backup", "result": "Success", "message": ""}]
    assert value(m, "veeam_job_last_run_success", **job) == 1
    assert value(m, "veeam_job_last_run_end_timestamp_seconds", **job) == (now - 23 * H).timestamp()
    assert value(m, "veeam_job_last_success_timestamp_seconds", **job) == (now - 23 * H).timestamp()
    assert value(m, "veeam_job_runs_24h", **job) == 1  # s4; the recovered run started 26 h ago
    assert value(m, "veeam_job_failed_runs_24h", **job) == 0
    # the replication job: r1 failed, r2 (retry) fixed it; r3 failed with a two-line message
    rjob = {**BI, "job": "BI Replica", "side": "replication"}
    info = [s for s in series(m, "veeam_job_last_run_info") if s["job"] == "BI Replica"]
    assert info == [
        {**rjob, "job_type": "Replica", "result": "Failed", "message": "Error: no space left on datastore"}
    ]
    assert value(m, "veeam_job_last_run_success", **rjob) == 0
    assert value(m, "veeam_job_last_run_end_timestamp_seconds", **rjob) == (now - 1.5 * H).timestamp()
    assert value(m, "veeam_job_last_success_timestamp_seconds", **rjob) == (now - 28.5 * H).timestamp()
    assert value(m, "veeam_job_runs_24h", **rjob) == 1
    assert value(m, "veeam_job_failed_runs_24h", **rjob) == 1

    # repositories: two of one name on two backup servers of one name, told apart by the server's uid;
    # one whose capacity EM does not know has no series at all
    repo = {**BI, "repository": "BI Repo", "backup_server_uid": SERVER}
    twin = {**repo, "backup_server_uid": TWIN}
    assert value(m, "veeam_repository_capacity_bytes", **repo) == 1000 * GIB
    assert value(m, "veeam_repository_free_bytes", **repo) == 50 * GIB
    assert value(m, "veeam_repository_free_bytes", **twin) == 1500 * GIB
    assert not [s for s in series(m, "veeam_repository_free_bytes") if s["repository"] == "Cloud"]
    assert not [s for s in series(m, "veeam_repository_capacity_bytes") if s["repository"] == "Cloud"]

    # the loader: the last finished run of em-a failed (the running one is not finished)
    em = {"source": "em-a"}
    assert value(m, "veeam_etl_last_run_success", **em) == 0
    [loader] = series(m, "veeam_etl_last_run_info")
    assert loader["status"] == "failed" and loader["mode"] == "incremental"
    assert loader["error"].startswith("Enterprise Manager answered 503 at /api/query xxx")
    assert len(loader["error"]) == metrics.MESSAGE_CHARS and loader["error"].endswith("…")
    assert value(m, "veeam_etl_last_success_timestamp_seconds", **em) == (now - 2 * H).timestamp() + 30
    assert value(m, "veeam_etl_last_run_end_timestamp_seconds", **em) == (now - H).timestamp() + 10
    assert value(m, "veeam_etl_last_run_duration_seconds", **em) == 10
    assert value(m, "veeam_etl_last_run_rows_written", operation="inserted", **em) == 0
    assert value(m, "veeam_etl_last_run_requests", **em) == 3
    assert value(m, "veeam_etl_last_run_undocumented_values", **em) == 0


def test_replication_runs_are_folded_as_v_replica_job_daily_folds_them(db_url):
    """metrics folds replication sessions into runs in Python (collection.replica_runs), the view
    v_replica_job_daily in SQL: per job and UTC day of a run's start both count the same runs by final
    outcome, on a simulated estate with automatic retries plus a run still going, a retry with no
    scheduled session before it and a Result nobody documented."""
    eng = db.engine(db_url)
    db.migrate(eng)
    now = datetime.now(UTC).replace(microsecond=0)
    truth = World(seed=2, servers=2, jobs=4, vms_per_job=3, days=10, now=now).truth()
    meta = schema.meta_values("sim", 1, now)
    with eng.begin() as conn:
        conn.execute(
            insert(schema.etl_runs).values(
                id=1, source="sim", started_at=now, status="succeeded", mode="full"
            )
        )
        for table, rows in truth_rows(truth).items():
            if rows:
                conn.execute(insert(schema.table(table)), [{**r, **meta} for r in rows])
        job = "urn:veeam:Job:odd"
        conn.execute(
            insert(schema.jobs).values(uid=job, name="Odd", job_type="Replica", placeholder=False, **meta)
        )
        for uid, start, state, result, retry in (
            ("o1", now - 50 * H, "Stopped", "Failed", True),  # a retry with no scheduled session before it
            ("o2", now - 49 * H, "Stopped", "Succeeded", True),  # its retry, with an undocumented Result
            ("o3", now - 26 * H, "Stopped", "Failed", False),
            ("o4", now - 2 * H, "Stopped", "Failed", False),
            ("o5", now - 1 * H, "Working", "None", True),  # its retry, still going
        ):
            conn.execute(
                insert(schema.replica_job_sessions).values(
                    uid=f"urn:veeam:ReplicaJobSession:{uid}", job_uid=job, job_name="Odd", name=f"Odd@{uid}",
                    creation_time_utc=start, end_time_utc=None if state == "Working" else start + H / 2,
                    state=state, result=result, is_retry=retry, placeholder=False, **meta,
                )
            )  # fmt: skip
    with collection._reading(eng) as conn:
        jobs = collection._replica_jobs(conn)
        daily = read_view(conn, "v_replica_job_daily")
    eng.dispose()
    kinds = {"Success": "successes", "Warning": "warnings", "Failed": "failures", "running": "running"}
    folded: Counter = Counter()
    for j in jobs:
        for run in j.runs:
            folded[j.uid, datetime.fromtimestamp(run.start, UTC).date(), kinds.get(run.outcome, "other")] += 1
    viewed: Counter = Counter()
    for d in daily:
        for column in (*kinds.values(), "other"):
            viewed[d["job_uid"], d["day_utc"], column] += d[column]
    assert +folded == +viewed
    assert sum(d["retries"] for d in daily) > 5 and sum(d["runs"] for d in daily) == sum(folded.values())
    assert {k for k, n in viewed.items() if n and k[0] == "urn:veeam:Job:odd"} == {
        ("urn:veeam:Job:odd", (now - 50 * H).date(), "other"),
        ("urn:veeam:Job:odd", (now - 26 * H).date(), "failures"),
        ("urn:veeam:Job:odd", (now - 2 * H).date(), "running"),
    }


def test_metrics_never_write_and_need_a_warehouse(tmp_path):
    url = f"sqlite:///{tmp_path / 'none.db'}"
    done = cli("metrics", "--db", url)
    assert done.returncode == 2 and "does not exist" in done.stderr
    assert not (tmp_path / "none.db").exists()
    url = f"sqlite:///{tmp_path / 'w.db'}"
    build(url)
    before = _dump(url)
    done = cli("metrics", "--db", url)
    assert done.returncode == 0, done.stderr
    assert "veeam_job_runs_24h" in done.stdout
    assert _dump(url) == before


def _dump(url: str) -> dict:
    eng = db.engine(url)
    with eng.connect() as conn:
        out = {
            t.name: sorted(map(repr, conn.execute(t.select()).all())) for t in schema.metadata.sorted_tables
        }
    eng.dispose()
    return out


def test_usage_errors_exit_2(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    db.migrate(db.engine(url))
    for args, says in (
        (["--out", str(tmp_path / "a.prom"), "--listen", "127.0.0.1:0"], "exclude each other"),
        (["--listen", "9469"], "HOST:PORT"),
        (["--listen", "::1:9469"], "brackets"),
        (["--out", str(tmp_path / "missing" / "a.prom")], "does not exist"),
    ):
        done = cli("metrics", "--db", url, *args)
        assert done.returncode == 2 and says in done.stderr, (args, done.stderr)
    assert metrics.listen_address("[::1]:9469") == ("::1", 9469)
    assert metrics.listen_address(":9469") == ("0.0.0.0", 9469)
    with pytest.raises(ConfigError):
        metrics.listen_address("127.0.0.1:99999")


# ------------------------------------------------------------------ --out
def test_out_replaces_the_file_atomically(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    build(url)
    eng = db.warehouse(url, mode="read")
    target = tmp_path / "textfile" / "veeam.prom"
    target.parent.mkdir()
    target.write_text("old\n")
    target.chmod(0o600)
    before = target.stat().st_ino
    seen = []
    real_replace = os.replace

    def replace(src, dst):  # the moment of the rename: the new file is whole, the old one still there
        src, dst = Path(src), Path(dst)
        seen.append(
            (src.name, src.parent, src.read_bytes(), dst.read_text(), stat.S_IMODE(src.stat().st_mode))
        )
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    assert metrics.write(eng, target) == target
    [(name, directory, content, old, mode)] = seen
    assert directory == target.parent and name.startswith(".veeam.prom.") and name.endswith(".tmp")
    assert old == "old\n" and content == target.read_bytes() and content.startswith(b"# HELP veeam_")
    assert mode == stat.S_IMODE(target.stat().st_mode) == 0o644
    assert target.stat().st_ino != before
    assert sorted(p.name for p in target.parent.iterdir()) == ["veeam.prom"]

    # a collection that fails leaves the file as it was, and no temporary file
    written = target.read_bytes()
    monkeypatch.setattr(
        serve, "exposition", lambda eng: (_ for _ in ()).throw(OperationalError("q", {}, "gone"))
    )
    with pytest.raises(OperationalError):
        metrics.write(eng, target)
    monkeypatch.undo()
    assert target.read_bytes() == written

    # so does a rename that fails
    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(VeeamEtlError, match="No space left"):
        metrics.write(eng, target)
    assert target.read_bytes() == written
    assert sorted(p.name for p in target.parent.iterdir()) == ["veeam.prom"]
    eng.dispose()


# ------------------------------------------------------------------ --listen
def _serve(url: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl", "metrics", "--db", url, "--listen", "127.0.0.1:0"],
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready, _, _ = select.select([proc.stderr], [], [], 60)
    line = proc.stderr.readline() if ready else ""
    found = re.search(r"at (http://127\.0\.0\.1:\d+)/metrics", line)
    if not found:
        proc.kill()
        pytest.fail(f"metrics --listen did not say where it listens: {line!r}")
    return proc, found.group(1)


def test_listen_serves_metrics_and_reads_the_warehouse_on_every_scrape(db_url):
    now = build(db_url)
    proc, base = _serve(db_url)
    try:
        got = httpx.get(f"{base}/metrics", timeout=60)
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert value(parse(got.text), "veeam_etl_last_run_success", source="em-a") == 0
        eng = db.engine(db_url)
        with eng.begin() as conn:  # a run of em-a succeeds between two scrapes
            conn.execute(
                insert(schema.etl_runs).values(
                    source="em-a", started_at=now, finished_at=now + timedelta(seconds=5), status="succeeded",
                    mode="incremental", rows_inserted=1, rows_updated=2, requests=9, new_values=0,
                )
            )  # fmt: skip
        eng.dispose()
        again = parse(httpx.get(f"{base}/metrics", timeout=60).text)
        assert value(again, "veeam_etl_last_run_success", source="em-a") == 1
        assert value(again, "veeam_etl_last_run_requests", source="em-a") == 9
        assert httpx.get(f"{base}/", timeout=10).status_code == 404
        # Prometheus asks for OpenMetrics first: the info families come as OpenMetrics info
        accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        om = httpx.get(f"{base}/metrics", headers={"Accept": accept}, timeout=60)
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        kinds = {f.name: f.type for f in openmetrics_families(om.text)}
        assert kinds["veeam_job_last_run"] == kinds["veeam_etl_last_run"] == "info"
        assert kinds["veeam_machine_rpo_breach"] == "gauge"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 143


def test_a_failing_scrape_answers_500_and_the_next_one_works(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    build(url)
    eng = db.warehouse(url, mode="read")
    app = metrics.app(eng)

    def scrape() -> tuple[str, bytes]:
        environ: dict = {"PATH_INFO": "/metrics"}
        setup_testing_defaults(environ)
        status = []
        body = b"".join(app(environ, lambda s, headers: status.append(s)))
        return status[0], body

    with eng.begin() as conn:
        conn.execute(text("DROP VIEW v_vm_replica_status"))
    status, body = scrape()
    assert status.startswith("500") and b"v_vm_replica_status" in body
    with eng.begin() as conn:
        db.create_views(conn)
    status, body = scrape()
    assert status.startswith("200") and b"veeam_machine_rpo_breach" in body
    eng.dispose()
