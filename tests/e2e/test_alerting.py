"""The alerting setup against real warehouses: `veeam-etl metrics` of a simulator-loaded warehouse passes
the real `promtool check metrics` (SQLite, through `demo`; PostgreSQL, read as docs/bi.md's read-only
role), and every panel query of the Grafana dashboard runs on PostgreSQL as that role, with Grafana's
macros expanded as Grafana expands them. A missing promtool fails, never skips."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from test_pg_recipe import _blocks, _psql, _section, recipe_cluster  # noqa: F401 - a fixture

from etl import db, metrics
from etl.simulator import Simulator, World
from helpers import add_backup_estate, cli

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "veeam-etl.dashboard.json"


def check_metrics(body: str) -> None:
    """`promtool check metrics` (its linter: names, units, HELP, TYPE) accepts `body`."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is required (Debian's prometheus package; .ci/run installs it)")
    done = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), (
        done.stdout + done.stderr
    )


def families(body: str) -> set[str]:
    return {line.split()[2] for line in body.splitlines() if line.startswith("# TYPE ")}


def test_metrics_of_the_demo_warehouse_pass_promtool(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    done = cli("demo", "--db", url, "--report", str(tmp_path / "report.html"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "veeam.prom"
    done = cli("metrics", "--db", url, "--out", str(out))
    assert done.returncode == 0, done.stderr
    body = out.read_text(encoding="utf-8")
    check_metrics(body)
    assert families(body) == set(metrics.BY_NAME)


# ------------------------------------------------------------------ Grafana's macros
def _time_filter(sql: str, start: datetime, end: datetime) -> str:
    """`$__timeFilter(expr)` as Grafana's PostgreSQL data source writes it:
    `expr BETWEEN '<from, RFC 3339>' AND '<to>'` (the argument may hold parentheses)."""
    out, at = [], 0
    macro = "$__timeFilter("
    while (found := sql.find(macro, at)) >= 0:
        out.append(sql[at:found])
        depth, i = 1, found + len(macro)
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        expr = sql[found + len(macro) : i - 1]
        out.append(f"{expr} BETWEEN '{start:%Y-%m-%dT%H:%M:%SZ}' AND '{end:%Y-%m-%dT%H:%M:%SZ}'")
        at = i
    return "".join(out) + sql[at:]


def expand(sql: str, start: datetime, end: datetime, sources: list[str]) -> str:
    """A panel's query as Grafana sends it: the time range macro, then a multi-value variable as its values
    quoted and joined by commas (what `All` selects too)."""
    sql = _time_filter(sql, start, end)
    sql = sql.replace("$source", ",".join("'" + s.replace("'", "''") + "'" for s in sources))
    assert "$" not in sql, f"a macro this test does not expand: {sql}"
    return sql


def test_expand_writes_what_grafana_writes():
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, 6, tzinfo=UTC)
    sql = "WHERE $__timeFilter(day_utc::timestamp AT TIME ZONE 'UTC') AND s IN ($source)"
    assert expand(sql, start, end, ["em-a", "o'brien"]) == (
        "WHERE day_utc::timestamp AT TIME ZONE 'UTC' BETWEEN '2025-01-01T00:00:00Z' AND '2025-01-02T06:00:00Z'"
        " AND s IN ('em-a','o''brien')"
    )


def test_every_panel_and_the_metrics_as_the_read_only_role(recipe_cluster):  # noqa: F811 - the fixture
    """The README's PostgreSQL recipe and docs/bi.md's read-only role as written (see test_pg_recipe),
    a simulated EM loaded by the loading role, then the dashboard and `veeam-etl metrics` as veeam_bi."""
    pg = recipe_cluster
    readme = _section((ROOT / "README.md").read_text(encoding="utf-8"), "PostgreSQL warehouse")
    [setup_sql] = _blocks(readme, "sql")
    _psql(pg, setup_sql)
    url = f"postgresql+psycopg://veeam_etl:x@127.0.0.1:{pg.port}/veeam"  # trust auth: any password
    now = datetime.now(UTC).replace(microsecond=0)
    world = World(seed=5, jobs=2, vms_per_job=3, days=3, now=now - timedelta(hours=30))
    with Simulator(world) as sim:
        done = cli("run", "--url", sim.url, "--user", "demo", "--source-name", "em-test", VEEAM_ETL_DB=url)
        assert done.returncode == 0, done.stderr
    loader = db.engine(url)
    add_backup_estate(
        loader, now
    )  # docs/bi.md's backup example: a low repository, a failure, a recovered run
    loader.dispose()
    [role_sql, *_] = _blocks((ROOT / "docs" / "bi.md").read_text(encoding="utf-8"), "sql")
    _psql(pg, role_sql)

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "source"]
    start, end = now - timedelta(days=14), now
    with psycopg.connect(pg.psql_dsn("veeam", "veeam_bi")) as reader:
        sources = [row[0] for row in reader.execute(variable["query"])]
        assert sources == ["bi-example", "em-test"]
        for panel in dashboard["panels"]:
            [target] = panel["targets"]
            rows = reader.execute(expand(target["rawSql"], start, end, sources)).fetchall()
            assert rows, panel["title"]
            if target["format"] == "time_series":
                assert all(isinstance(r[0], datetime) for r in rows), panel["title"]
            reader.rollback()
        only = expand(
            next(p for p in dashboard["panels"] if p["title"] == "Repository free space")["targets"][0][
                "rawSql"
            ],
            start,
            end,
            ["em-test"],
        )
        assert all("BI Repo" not in r[1] for r in reader.execute(only)), "the source variable filters"

    bi_url = f"postgresql+psycopg://veeam_bi:x@127.0.0.1:{pg.port}/veeam"
    done = cli("metrics", "--db", bi_url)
    assert done.returncode == 0, f"veeam-etl metrics as veeam_bi: {done.stderr}"
    check_metrics(done.stdout)
    assert families(done.stdout) == set(metrics.BY_NAME)
    assert 'veeam_etl_last_run_success{source="em-test"} 1.0' in done.stdout
