"""deploy/prometheus/ and deploy/grafana/: the alert rules pass the real `promtool check rules` and their
unit tests (`promtool test rules`, which prove every alert fires and clears), name only families
`veeam-etl metrics` declares; the dashboard is one query per panel on the reporting views with the
`source` variable; the systemd units and docs/alerting.md use real options and name every family.
A missing promtool fails these tests (`.ci/run` installs Debian's prometheus package)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from test_deploy import _unit, check_argv, veeam_argv

from etl import metrics, views

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "veeam-etl.rules.yml"
RULE_TESTS = PROMETHEUS / "veeam-etl.rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "veeam-etl.dashboard.json"
ALERTING = ROOT / "docs" / "alerting.md"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is required (Debian's prometheus package; .ci/run installs it)")
    return found


def run_promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [promtool(), *args], input=stdin, capture_output=True, text=True, timeout=120, cwd=PROMETHEUS
    )


def test_promtool_checks_the_rules_and_runs_their_unit_tests():
    checked = run_promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout
    tested = run_promtool("test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_promtool_refuses_a_rule_that_fails_its_test(tmp_path):
    """The unit tests can fail: with the low-space threshold moved, they do."""
    broken = RULES.read_text(encoding="utf-8").replace("< 0.10", "< 0.01")
    (tmp_path / RULES.name).write_text(broken, encoding="utf-8")
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    done = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode != 0 and "VeeamRepositoryLowSpace" in done.stdout + done.stderr


def _alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_rules_name_only_declared_families_and_every_alert_fires_and_clears():
    alerts = _alerts()
    assert {a["alert"] for a in alerts} == {
        "VeeamMachineRpoBreach",
        "VeeamJobFailed",
        "VeeamRepositoryLowSpace",
        "VeeamEtlStale",
        "VeeamEtlFailing",
    }
    for alert in alerts:
        used = set(re.findall(r"\bveeam_[a-z0-9_]+", alert["expr"]))
        assert used and used <= set(metrics.BY_NAME), (alert["alert"], used - set(metrics.BY_NAME))
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    assert tests["rule_files"] == [RULES.name]
    for alert in alerts:
        cases = [
            case
            for test in tests["tests"]
            for case in sorted(test["alert_rule_test"], key=lambda c: _minutes(c["eval_time"]))
            if case["alertname"] == alert["alert"]
        ]
        fired = [i for i, c in enumerate(cases) if c["exp_alerts"]]
        assert fired, f"no test shows {alert['alert']} firing"
        assert any(not c["exp_alerts"] for c in cases[fired[0] + 1 :]), (
            f"no test shows {alert['alert']} clear"
        )
        assert all(a.get("exp_annotations") for c in cases for a in c["exp_alerts"]), alert["alert"]


def _minutes(duration: str) -> int:
    return int(duration.removesuffix("m"))


def _panels() -> list[dict]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]


def test_dashboard_is_one_query_per_panel_on_the_reporting_views():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "grafana-postgresql-datasource"
    assert variables["source"]["multi"] and variables["source"]["includeAll"]
    panels = _panels()
    assert len({p["id"] for p in panels}) == len(panels)
    public = set(views.public())
    titles = {p["title"] for p in panels}
    for wanted in ("Job success per day", "Machines by age of their newest restore point", "Failures"):
        assert wanted in titles
    assert "Repository free space" in titles
    for panel in panels:
        [target] = panel["targets"]
        assert panel["datasource"]["uid"] == target["datasource"]["uid"] == "${datasource}", panel["title"]
        sql = target["rawSql"]
        named = set(re.findall(r"\bv_[a-z_]+", sql))
        assert named <= public, (panel["title"], named - public)
        assert named or "etl_runs" in sql, panel["title"]
        assert "IN ($source)" in sql, panel["title"]
        assert target["format"] in ("table", "time_series")


def test_systemd_units_for_the_textfile_and_the_scrape():
    service = _unit(PROMETHEUS / "veeam-etl-metrics.service")
    timer = _unit(PROMETHEUS / "veeam-etl-metrics.timer")
    http = _unit(PROMETHEUS / "veeam-etl-metrics-http.service")
    textfile = veeam_argv(service["Service"]["ExecStart"])
    assert check_argv(textfile).name == "metrics" and textfile[textfile.index("--out") + 1].endswith(".prom")
    assert service["Service"]["User"] != "root" and service["Service"]["Type"] == "oneshot"
    assert timer["Timer"]["Unit"] == "veeam-etl-metrics.service"
    served = veeam_argv(http["Service"]["ExecStart"])
    assert check_argv(served).name == "metrics" and "--listen" in served
    assert "143" in http["Service"]["SuccessExitStatus"].split()


def test_alerting_guide_names_every_family_and_alert_and_uses_real_options():
    text = ALERTING.read_text(encoding="utf-8")
    for family in metrics.FAMILIES:
        assert f"`{family.name}`" in text, family.name
    for alert in _alerts():
        assert alert["alert"] in text, alert["alert"]
    shell = "\n".join(re.findall(r"^```sh\n(.*?)^```", text, re.MULTILINE | re.DOTALL))
    commands = [
        shlex.split(line, comments=True) for line in shell.splitlines() if "veeam-etl metrics" in line
    ]
    assert len(commands) >= 4
    for words in commands:
        (at,) = [i for i, w in enumerate(words) if w == "veeam-etl"]
        assert check_argv(words[at + 1 :]).name == "metrics", words
    assert "docs/alerting.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    for phrase in ("textfile", "--listen", "veeam_bi", "bi.md", "veeam-etl.dashboard.json"):
        assert phrase in text, phrase
