"""`veeam-etl report`: table, CSV and JSON output on both databases, and the HTML page rendered in a real
headless Chromium (Debian's `chromium`; missing it fails the test, never skips it).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, text

from etl import charts, db, registry, report, schema
from etl.cli import main
from etl.simulator import World

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HOSTILE_VM = '<script>alert("vm")</script>&"vm'
HOSTILE_JOB = "<img src=x onerror=alert(1)> Job"
CHART_IDS = ("chart-success-rate", "chart-success-matrix", "chart-rpo", "chart-transfer")


def _load(url: str, seed: int = 2) -> None:
    """A warehouse holding a simulated estate, plus a VM and a job with hostile names."""
    eng = db.engine(url)
    db.migrate(eng)
    now = datetime.now(UTC).replace(microsecond=0)
    truth = World(seed=seed, servers=2, jobs=4, vms_per_job=6, days=10, now=now).truth()
    meta = {"source": "test", "first_loaded_at": now, "last_loaded_at": now}
    with eng.begin() as conn:
        meta["run_id"] = conn.execute(
            insert(schema.etl_runs)
            .values(source="test", started_at=now, finished_at=now, status="succeeded", mode="full")
            .returning(schema.etl_runs.c.id)
        ).scalar()
        for table in registry.tables():
            conn.execute(insert(table), [{**r, **meta} for r in truth[table.name].values()])
        server = next(iter(truth["backup_servers"]))
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
    eng.dispose()


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
    assert set(s["tiles"]) == {"vms_protected", "rpo_breaches", "rpo_amber", "success_rate_7d", "gb_last_24h"}
    assert s["tiles"]["vms_protected"] == len(s["vms"]) > 0
    assert s["tiles"]["rpo_breaches"] >= 1  # the hostile VM never succeeded
    assert 0 < s["tiles"]["success_rate_7d"] <= 1 and s["tiles"]["gb_last_24h"] > 0
    assert s["vms"][0]["rpo_status"] == "red" and len(s["days"]) == 14


def test_table_summary_and_view(warehouse):
    out = _run("report", "--db", warehouse)
    assert "VMs protected:" in out and "RPO breaches:" in out and "Newest failures" in out
    assert HOSTILE_VM in out  # a terminal shows text as it is
    out = _run("report", "--db", warehouse, "--view", "v_replica_transfer_daily")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["backup_server_uid", "backup_server_name", "day_utc"]
    assert set(lines[1]) <= {"-", " "} and len(lines) > 3


def test_csv_summary_is_metric_value_rows(sqlite_warehouse):
    rows = list(csv.DictReader(io.StringIO(_run("report", "--db", sqlite_warehouse, "--format", "csv"))))
    metrics = {r["metric"]: r["value"] for r in rows}
    assert {"vms_protected", "rpo_breaches", "success_rate_7d", "gb_last_24h", "rpo_hours"} <= set(metrics)


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


def test_nice_axis_maximum():
    assert charts.nice_max(0) == (1.0, 0.25)
    assert charts.nice_max(43_438) == (60_000, 20_000)
    assert charts.nice_max(0.4) == (0.4, 0.1)
    assert charts.nice_max(7) == (8, 2)


# ---------------------------------------------------------------------- HTML in a real browser
def _chromium() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )
    if not found:
        pytest.fail("Debian's chromium is required for the HTML report test: apt-get install -y chromium")
    return found


def _browse(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
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
        "--window-size=1600,1000",
        "--hide-scrollbars",
        *extra,
        page.as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=profile)


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


def test_html_report_renders_in_headless_chromium(sqlite_warehouse, tmp_path):
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
    assert "url(" not in html and "@import" not in html
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) <= {"http://www.w3.org/2000/svg"}
    # untrusted names are escaped
    assert HOSTILE_VM not in html and HOSTILE_JOB not in html
    assert "&lt;script&gt;alert(&quot;vm&quot;)&lt;/script&gt;&amp;&quot;vm" in html
    assert "&lt;/td&gt;&lt;b&gt;reason&lt;/b&gt;" in html

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    done = _browse(page, tmp_path, f"--screenshot={shot}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not CONSOLE.search(done.stderr), done.stderr[-3000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    shutil.copy(page, ARTIFACTS / "report.html")

    done = _browse(page, tmp_path, "--dump-dom")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not CONSOLE.search(done.stderr), done.stderr[-3000:]
    dom = done.stdout
    for chart_id in CHART_IDS:
        assert re.search(rf'<svg id="{chart_id}" class="chart chart-\w+"', dom), chart_id
    assert len(re.findall(r'<path d="M', dom)) >= 4  # one line per job
    assert len(re.findall(r'class="bar"', dom)) >= 10
    assert len(re.findall(r'class="segment"', dom)) >= 2
    assert len(re.findall(r'class="cell"', dom)) == 5 * 14  # jobs x days
    for tile in ("tile-vms", "tile-breaches", "tile-success", "tile-gb"):
        assert f'id="{tile}"' in dom
    assert re.search(r'id="tile-breaches"[^>]*>.*?class="value">[1-9]', dom, re.DOTALL)
    tags, attributes = _markup(dom)
    assert not tags & {"script", "img", "link"} and not attributes & {"src", "href", "onerror"}
    assert '<table id="failures-table">' in dom and "later success" in dom


def test_an_empty_warehouse_reports_without_errors(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    eng = db.engine(url)
    db.migrate(eng)
    html = report.render(eng, "html")
    for chart_id in CHART_IDS:
        assert f'id="{chart_id}"' in html
    assert "no failed or warning tasks" in html and "last load never" in html
    s = json.loads(report.render(eng, "json"))
    assert s["tiles"] == {
        "vms_protected": 0,
        "rpo_breaches": 0,
        "rpo_amber": 0,
        "success_rate_7d": None,
        "gb_last_24h": 0.0,
    }
    assert "(no rows)" in report.render(eng, "table")
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
    assert 'id="chart-transfer"' in path.read_text(encoding="utf-8")
