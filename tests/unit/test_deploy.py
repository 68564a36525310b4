"""deploy/: the systemd units, the Kubernetes CronJob, the Airflow DAG and the example estate file
parse, and every `veeam-etl` option they use is a real option of the command line."""

from __future__ import annotations

import ast
import configparser
import shlex
import warnings
from pathlib import Path

import click
import pytest
import yaml

from etl import cli, fleet

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def check_argv(argv: list[str]) -> click.Command:
    """Parse `veeam-etl ARGV` with the real click commands (types and choices checked, nothing run);
    fail on an option the command does not have. Returns the subcommand."""
    group = cli.main
    ctx = group.make_context("veeam-etl", list(argv), resilient_parsing=False)
    with warnings.catch_warnings():  # click 8.2 deprecates protected_args; 9.0 puts all of them in args
        warnings.simplefilter("ignore", DeprecationWarning)
        remaining = [*getattr(ctx, "protected_args", []), *ctx.args]
    name, cmd, rest = group.resolve_command(ctx, remaining)
    known = {opt for p in cmd.params for opt in p.opts + p.secondary_opts}
    used = [a.split("=")[0] for a in rest if a.startswith("--")]
    unknown = [a for a in used if a not in known]
    assert not unknown, f"veeam-etl {name} has no option {unknown}"
    sub = cmd.make_context(name, list(rest), parent=ctx)
    assert not sub.args, f"veeam-etl {name}: unexpected arguments {sub.args}"
    return cmd


def veeam_argv(command: str) -> list[str]:
    """The arguments after the `veeam-etl` executable in a shell command line."""
    words = shlex.split(command, posix=True)
    (at,) = [i for i, w in enumerate(words) if w.endswith("veeam-etl")]
    return words[at + 1 :]


def test_check_argv_catches_a_wrong_option():
    assert check_argv(["--log-format", "json", "run", "--config", "e.toml", "--parallel", "2"]).name == "run"
    with pytest.raises(AssertionError, match="no option"):
        check_argv(["run", "--config", "e.toml", "--paralel", "2"])
    with pytest.raises(click.BadParameter):
        check_argv(["run", "--config", "e.toml", "--parallel", "many"])


def test_example_estate_file_is_valid():
    estate = fleet.load(DEPLOY / "estate.example.toml")
    assert estate.names() == ["em-lon", "em-nyc", "em-customer-a"]
    assert estate.cron == "*/15 * * * *"


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    return parser


def test_systemd_service_and_timer():
    service = _unit(DEPLOY / "systemd" / "veeam-etl.service")
    timer = _unit(DEPLOY / "systemd" / "veeam-etl.timer")
    assert service["Service"]["Type"] == "oneshot"
    assert "75" in service["Service"]["SuccessExitStatus"].split()
    assert service["Service"]["User"] != "root"
    exec_start = service["Service"]["ExecStart"]
    assert check_argv(veeam_argv(exec_start)).name == "run"
    assert "--config" in exec_start
    assert timer["Timer"]["Unit"] == "veeam-etl.service" and timer["Timer"]["OnCalendar"]
    assert timer["Install"]["WantedBy"] == "timers.target"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def test_kubernetes_cronjobs():
    docs = _docs(DEPLOY / "kubernetes" / "cronjob.yaml")
    config_maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    cronjobs = [d for d in docs if d["kind"] == "CronJob"]
    assert len(cronjobs) == 2
    for job in cronjobs:
        spec = job["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        (container,) = pod["containers"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        args = [str(a) for a in container["args"]]
        check_argv(args)
        env = {e["name"]: e for e in container["env"]}
        for name in ("VEEAM_EM_PASSWORD", "VEEAM_ETL_DB"):  # secrets come from a Secret, never a value
            assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"]["name"] == "veeam-etl"
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert volumes[mounts["/etc/veeam-etl/tls"]]["configMap"]["name"] == "veeam-etl-em-ca"
        if "--config" in args:
            estate_path = args[args.index("--config") + 1]
            volume = volumes[mounts[estate_path]]
            text = config_maps[volume["configMap"]["name"]]["data"]["estate.toml"]
            estate = fleet.parse(text, estate_path)
            assert {str(em.ca_bundle) for em in estate.ems} == {"/etc/veeam-etl/tls/ca.pem"}
            # every variable the estate names is in the container's environment, from the Secret
            assert {em.password_env for em in estate.ems} <= set(env)
        else:
            assert args[args.index("--ca-bundle") + 1] == "/etc/veeam-etl/tls/ca.pem"


def test_airflow_dag_calls_real_options():
    source = (DEPLOY / "airflow" / "veeam_etl_dag.py").read_text(encoding="utf-8")
    tree = ast.parse(source)  # parsed, not imported: Airflow need not be installed here
    templates = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and "veeam-etl" in node.value.value
    }
    assert set(templates) == {"LOAD_ONE", "LOAD_ALL"}
    for template in templates.values():
        command = template.format(estate="/opt/airflow/veeam-etl/estate.toml", name="em-lon")
        assert check_argv(veeam_argv(command)).name == "run"
    operators = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "BashOperator"
    ]
    assert len(operators) == 1
    keywords = {k.arg: k.value for k in operators[0].keywords}
    assert ast.literal_eval(keywords["skip_on_exit_code"]) == 75
    dag = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "DAG")
    dag_kw = {k.arg: k.value for k in dag.keywords}
    assert ast.literal_eval(dag_kw["max_active_runs"]) == 1 and ast.literal_eval(dag_kw["catchup"]) is False
