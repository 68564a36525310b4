"""deploy/, the Containerfile and docs/scheduling.md: the systemd units, the Kubernetes CronJob, the
Airflow DAG, the example estate file and the container image parse, every `veeam-etl` option they use
is a real option of the command line, the docs say what the files do (user, environment file,
working directory), and no page installs the package from an index it is not on."""

from __future__ import annotations

import ast
import configparser
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import warnings
import zipfile
from pathlib import Path

import click
import pytest
import yaml

from etl import cli
from etl.estate import load, parse

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
    estate = load(DEPLOY / "estate.example.toml")
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
        # the command is stated, not left to whatever entrypoint an image has: the Containerfile's
        assert container["command"] == json.loads(_one(containerfile()[-1], "ENTRYPOINT"))
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
            estate = parse(text, estate_path)
            assert {str(em.connection.ca_bundle) for em in estate.ems} == {"/etc/veeam-etl/tls/ca.pem"}
            # every variable the estate names is in the container's environment, from the Secret
            assert {em.connection.password_env for em in estate.ems} <= set(env)
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


# --- the Containerfile: parsed (no container engine runs here), its build steps run for real ----------


def containerfile(path: Path = ROOT / "Containerfile") -> list[list[tuple[str, str]]]:
    """The stages of a Containerfile, each a list of (INSTRUCTION, arguments); continuation lines
    joined, comments dropped."""
    stages: list[list[tuple[str, str]]] = []
    logical, pending = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "a continuation line ends the file"
    for line in logical:
        instruction, _, rest = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        assert stages, f"{instruction} before the first FROM"
        stages[-1].append((instruction.upper(), rest.strip()))
    return stages


def _one(stage: list[tuple[str, str]], instruction: str) -> str:
    (value,) = [rest for name, rest in stage if name == instruction]
    return value


def test_containerfile_runs_veeam_etl_as_an_unprivileged_user():
    build, final = containerfile()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for stage in (build, final):  # a Python the package supports
        image = _one(stage, "FROM").split()[0]
        assert re.fullmatch(r"docker\.io/library/python:3\.(1[1-9])-slim", image), image
    assert pyproject["project"]["requires-python"] == ">=3.11"
    # the entry point: exec form, the console script the package declares
    entrypoint = json.loads(_one(final, "ENTRYPOINT"))
    assert entrypoint == ["veeam-etl"] and "veeam-etl" in pyproject["project"]["scripts"]
    assert json.loads(_one(final, "CMD")) == ["--help"]
    # not root: a numeric uid (Kubernetes' runAsNonRoot can check it), the one the CronJob runs as
    uid, _, gid = _one(final, "USER").partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    useradd = next(rest for name, rest in final if name == "RUN" and "useradd" in rest)
    assert f"--uid {uid}" in useradd
    for job in (d for d in _docs(DEPLOY / "kubernetes" / "cronjob.yaml") if d["kind"] == "CronJob"):
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == int(uid)
    # the final stage installs the wheel the build stage made, and nothing from an index by name
    wheels = _one(build, "RUN").split("--wheel-dir", 1)[1].split()[0]
    assert any(name == "COPY" and rest.startswith(f"--from=build {wheels}") for name, rest in final)
    install = next(rest for name, rest in final if name == "RUN" and "pip install" in rest)
    assert f"{wheels}/veeam_etl-" in install and "veeam-etl" not in install.split("pip install", 1)[1]


def test_containerfile_build_stage_makes_a_complete_wheel(tmp_path):
    """The build stage's COPY lines bring every file the package is made of: the wheel built from
    only those files (the stage's own `pip wheel` step, offline) holds the code, the migrations, the
    views, the report's templates and stylesheet, and the console script."""
    build, _ = containerfile()
    workdir = Path(_one(build, "WORKDIR"))
    context = tmp_path / "context"
    for name, rest in build:
        if name != "COPY":
            continue
        *sources, target = rest.split()
        for source in sources:
            origin = ROOT / source
            assert origin.exists(), f"COPY {source}: not in the repository"
            destination = context / (workdir / target).relative_to(workdir)
            if origin.is_dir():
                shutil.copytree(origin, destination, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                destination.mkdir(parents=True, exist_ok=True)
                shutil.copy(origin, destination / origin.name if target.endswith("/") else destination)
    step = _one(build, "RUN").split()
    assert step[:4] == ["python", "-m", "pip", "wheel"] and step[-1] == "."
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "--wheel-dir",
            str(tmp_path / "wheels"),
            ".",
        ],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "wheels").glob("veeam_etl-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        entry_points = next(whl.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    for module in (
        "etl/cli/__init__.py",
        "etl/simulator/server.py",
        "etl/migrations/env.py",
        "etl/migrations/script.py.mako",
    ):
        assert module in names, module
    for path in (ROOT / "etl").rglob("*.py"):  # every module of every package (pyproject's `packages`)
        assert f"etl/{path.relative_to(ROOT / 'etl').as_posix()}" in names, path
    for path in (ROOT / "migrations" / "versions").glob("*.py"):
        assert f"etl/migrations/versions/{path.name}" in names, path.name
    for path in (ROOT / "sql").glob("*.sql"):
        assert f"etl/sql/{path.name}" in names, path.name
    for folder in ("templates", "static"):  # the report page's templates and stylesheet
        for path in (ROOT / "etl" / "report" / folder).iterdir():
            assert f"etl/report/{folder}/{path.name}" in names, path.name
    assert "veeam-etl = etl.cli:main" in entry_points


# --- the docs say what the deploy files do ----------------------------------------------------------


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_scheduling_docs_and_deploy_files_agree():
    """docs/scheduling.md's install steps, cron line, environment file and systemd excerpts name the
    user, files and directory the deploy units use, and every unit setting it shows is the file's."""
    text = (ROOT / "docs" / "scheduling.md").read_text(encoding="utf-8")
    service = _unit(DEPLOY / "systemd" / "veeam-etl.service")["Service"]
    timer = _unit(DEPLOY / "systemd" / "veeam-etl.timer")["Timer"]
    user, env_file, workdir = service["User"], service["EnvironmentFile"], service["WorkingDirectory"]
    assert service["Group"] == user and service["StateDirectory"] == Path(workdir).name
    # every setting the docs show is the one in the file
    for block in _blocks(text, "ini"):
        shown = configparser.ConfigParser(strict=False, interpolation=None)
        shown.optionxform = str
        shown.read_string(block)
        for section in shown.sections():
            deployed = {"Service": service, "Timer": timer}[section]
            for key, value in shown[section].items():
                assert deployed.get(key) == value, (
                    f"docs [{section}] {key}={value}, deploy: {deployed.get(key)}"
                )
    # the install steps make that user, that environment file and that directory
    (install,) = [b for b in _blocks(text, "sh") if "useradd" in b]
    assert re.search(rf"useradd .*--home-dir {workdir} .* {user}$", install, flags=re.M), install
    assert env_file in install and f"-o {user} -g {user} {workdir}" in install
    # the environment file: NAME=value lines without `export`, as EnvironmentFile reads them
    (env,) = [b for b in _blocks(text, "sh") if "VEEAM_ETL_DB=" in b]
    for line in env.splitlines():
        assert re.fullmatch(r"[A-Z_][A-Z0-9_]*=.+", line), line
    # the cron line: same user, working directory and file (exported with set -a), a real command line
    (cron,) = [line for b in _blocks(text, "cron") for line in b.splitlines() if not line.startswith("#")]
    fields = cron.split(None, 6)
    assert fields[5] == user, cron
    assert f"cd {workdir} && set -a && . {env_file} && set +a && " in fields[6], cron
    command = fields[6].split("&&")[-1].split("2>&1")[0]
    assert check_argv(veeam_argv(command)).name == "run"
    exec_start = veeam_argv(service["ExecStart"])
    assert exec_start[exec_start.index("--config") + 1] in command


PIP_FROM_INDEX = re.compile(r"pip install\s+['\"]?veeam[-_]etl\b")


def test_nothing_installs_the_package_from_an_index_it_is_not_on():
    files = [ROOT / "README.md", ROOT / "Containerfile", *(ROOT / "docs").glob("*.md")]
    files += [p for p in DEPLOY.rglob("*") if p.is_file()] + list((ROOT / "etl").glob("*.py"))
    offenders = [
        f"{p.relative_to(ROOT)}: {m.group(0)}"
        for p in files
        for m in PIP_FROM_INDEX.finditer(p.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders


def test_the_dagster_extra_brings_the_webserver_dagster_dev_starts():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    names = {re.split(r"[<>=!~\[ ]", r, maxsplit=1)[0] for r in extras["dagster"]}
    assert {"dagster", "dagster-webserver"} <= names


def test_the_readme_says_what_ci_run_does_and_how_long_it_takes():
    """Every step of .ci/run (the apt packages, the install, each linter, the test command) is named
    in the README's test section, with a measured duration."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run the tests", 1)[1].split("\n## ", 1)[0]
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    steps = [
        line.strip()
        for line in script.splitlines()
        if re.match(r"\s*(ruff|mypy|python -m pytest|python -m pip install -q -e)", line)
    ]
    assert len(steps) == 5, steps
    for step in steps:
        words = step.replace("python -m pip install -q -e", "pip install -e")
        assert words in section.replace("\n", " "), step
    for package in re.findall(r"need_apt\+=\((\w+)\)", script):
        assert package.lower() in section.lower(), package
    assert re.search(r"How long: \d+ min \d+ s", section)


@pytest.mark.parametrize(("extras", "suffix"), [("", ""), ("dagster", "[dagster]")])
def test_containerfile_install_step_installs_the_one_wheel_with_the_extras_asked_for(
    tmp_path, extras, suffix
):
    """The final stage's RUN, run by /bin/sh as the image would, with `python` recording what pip is asked
    to install: the wheel the build stage made, with `--build-arg EXTRAS=…` when given."""
    _, final = containerfile()
    step = next(rest for name, rest in final if name == "RUN" and "pip install" in rest)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "veeam_etl-0.1.0-py3-none-any.whl").write_bytes(b"")
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/asked\n')
    (shim / "python").chmod(0o755)
    done = subprocess.run(
        ["/bin/sh", "-c", step.replace("/wheels", str(wheels))],
        env={"PATH": f"{shim}:/usr/bin:/bin", "EXTRAS": extras},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    (asked,) = (tmp_path / "asked").read_text().splitlines()
    assert asked == f"-m pip install --no-cache-dir {wheels}/veeam_etl-0.1.0-py3-none-any.whl{suffix}"
    assert not wheels.exists()  # the wheels do not stay in the image
