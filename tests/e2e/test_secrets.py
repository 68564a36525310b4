"""Secrets: the EM password (and the session token, and a warehouse password) never appears in
stdout, stderr (even at -vv, text or JSON), any table of the warehouse, a process's command line,
or a repr — on success and on failure. The password is never a flag value.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import click
import pytest
from sqlalchemy import MetaData, Table, inspect, select

from etl import cli as cli_module
from etl import db, pipeline
from etl.client import EMClient, RetryPolicy
from etl.errors import AuthError, ConfigError
from etl.simulator import Faults, Simulator, World
from helpers import cli


class TokenSpy(Faults):
    """Records every session token the client presents (they must not leak either)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.tokens: set[str] = set()

    def intercept(self, ctx):
        if ctx.token:
            self.tokens.add(ctx.token)
        return super().intercept(ctx)


def world() -> World:
    return World(seed=8, servers=1, jobs=2, vms_per_job=3, days=2)


def run_cli(
    *args: str, password: str | None = None, password_file: Path | None = None, **env: str
) -> subprocess.CompletedProcess:
    extra = ["--password-file", str(password_file)] if password_file else []
    return cli(*args, *extra, password=password, **env)


def warehouse_text(url: str) -> str:
    eng = db.engine(url)
    parts = []
    try:
        with eng.connect() as conn:
            for name in inspect(conn).get_table_names():
                table = Table(name, MetaData(), autoload_with=conn)
                for row in conn.execute(select(table)):
                    parts.extend(str(v) for v in row)
    finally:
        eng.dispose()
    return "\n".join(parts)


def forms(secret: str, user: str = "demo") -> list[str]:
    """The secret as it could leak: plain, and inside an HTTP Basic header."""
    return [secret, base64.b64encode(f"{user}:{secret}".encode()).decode()]


def assert_absent(secrets: list[str], *texts: str) -> None:
    for s in secrets:
        for t in texts:
            assert s not in t, f"secret {s[:6]}… leaked"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_successful_debug_run_leaks_nothing(db_url, tmp_path, log_format):
    password = f"pw-{uuid.uuid4().hex}"
    spy = TokenSpy(token_requests=9)  # a re-logon mid-run too (9 > 2 x threads, 2 x concurrency 2)
    with Simulator(world(), password=password, faults=spy) as sim:
        done = run_cli(
            "-vv",
            "--log-format",
            log_format,
            "run",
            "--url",
            sim.url,
            "--user",
            "demo",
            "--db",
            db_url,
            "--page-size",
            "5",
            "--concurrency",
            "2",
            password=password,
        )
    assert done.returncode == 0, done.stderr
    assert "DEBUG" in done.stderr.upper() and "logged on" in done.stderr  # debug logging was on
    assert len(spy.tokens) >= 2
    assert_absent(forms(password) + sorted(spy.tokens), done.stdout, done.stderr, warehouse_text(db_url))


def test_password_file_run_leaks_nothing(tmp_path):
    password = f"pw-{uuid.uuid4().hex}"
    secret_file = tmp_path / "em.pw"
    secret_file.write_text(password + "\n")
    url = f"sqlite:///{tmp_path}/w.db"
    with Simulator(world(), password=password) as sim:
        done = run_cli(
            "-vv", "run", "--url", sim.url, "--user", "demo", "--db", url, password_file=secret_file
        )
    assert done.returncode == 0, done.stderr
    assert_absent(forms(password), done.stdout, done.stderr, warehouse_text(url))


def test_bad_em_credentials_fail_clearly_and_leak_nothing(db_url):
    password = f"pw-{uuid.uuid4().hex}"
    with Simulator(world(), password="the-right-one") as sim:
        done = run_cli("-vv", "run", "--url", sim.url, "--user", "demo", "--db", db_url, password=password)
    assert done.returncode == 1
    assert "refused the logon of user 'demo'" in done.stderr and "Traceback" not in done.stderr
    assert_absent(forms(password), done.stdout, done.stderr, warehouse_text(db_url))


def test_unreachable_warehouse_with_a_password_leaks_nothing(tmp_path):
    password, db_password = f"pw-{uuid.uuid4().hex}", f"dbpw-{uuid.uuid4().hex}"
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://etl:{db_password}@127.0.0.1:{port}/warehouse"
    with Simulator(world(), password=password) as sim:
        done = run_cli("-vv", "run", "--url", sim.url, "--user", "demo", "--db", url, password=password)
    assert done.returncode == 1
    assert "warehouse" in done.stderr and "Traceback" not in done.stderr
    assert_absent(forms(password) + [db_password], done.stdout, done.stderr)


def test_em_failure_midway_leaks_nothing(tmp_path):
    password = f"pw-{uuid.uuid4().hex}"
    url = f"sqlite:///{tmp_path}/w.db"
    with Simulator(world(), password=password, faults=Faults(down=True)) as sim:
        done = run_cli(
            "-vv", "run", "--url", sim.url, "--user", "demo", "--db", url, "--retries", "2", password=password
        )
    assert done.returncode == 1 and "giving up" in done.stderr
    text = warehouse_text(url)
    assert "giving up" in text  # the failed run recorded its error ...
    assert_absent(forms(password), done.stdout, done.stderr, text)  # ... without the password


def test_password_is_not_on_the_command_line_of_a_running_process(tmp_path):
    password = f"pw-{uuid.uuid4().hex}"
    slow = Faults(slow=1.0, slow_seconds=0.5, max_per_request=99)  # every page takes a while
    with Simulator(world(), password=password, faults=slow) as sim:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("VEEAM_")}
        environ["VEEAM_EM_PASSWORD"] = password
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "etl",
                "run",
                "--url",
                sim.url,
                "--user",
                "demo",
                "--db",
                f"sqlite:///{tmp_path}/w.db",
                "--timeout",
                "5",
            ],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while sim.requests_by_kind["query"] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert proc.poll() is None, "the run should still be going"
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
            assert b"run" in cmdline and password.encode() not in cmdline
        finally:
            proc.kill()
            proc.wait()


def test_no_cli_option_takes_the_em_password():
    """The EM password is never a flag value (flags show in process lists and shell history)."""
    for name, command in cli_module.main.commands.items():
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            names = " ".join(param.opts + param.secondary_opts).lower()
            if name == "simulate" and param.name == "password":
                continue  # the account the *fake* EM accepts (default demo/demo), not a credential
            assert "password" not in names or param.name == "password_file", f"{name} {names}"
            assert "secret" not in names and "token" not in names, f"{name} {names}"


def test_reprs_and_errors_hide_secrets():
    password = f"pw-{uuid.uuid4().hex}"
    client = EMClient("https://em01:9398/api", "demo", password)
    options = pipeline.Options(retry=RetryPolicy())
    for text in (repr(client), str(client), repr(options), repr(options.retry)):
        assert password not in text
    with pytest.raises(ConfigError) as refused:  # credentials in the URL: refused, never repeated
        EMClient("https://u:urlpw@em01:9398/api", "demo", password)
    assert "urlpw" not in str(refused.value) and password not in str(refused.value)
    assert db.masked("postgresql+psycopg://etl:dbpw-123@db/w") == "postgresql+psycopg://etl:***@db/w"
    with (
        Simulator(world(), password="other") as sim,
        pytest.raises(AuthError) as info,
        EMClient(sim.url, "demo", password, retry=RetryPolicy(attempts=1)),
    ):
        pass
    assert password not in str(info.value) and password not in repr(info.value.args)
