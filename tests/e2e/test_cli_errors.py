"""Every configuration or usage mistake ends in one line on stderr (no traceback) naming the value and
the fix, with exit 2, before Enterprise Manager or the warehouse is touched; read-only commands never
create a warehouse. One test per kind of mistake, each a real `python -m etl` process."""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import uuid

import psycopg
import pytest
import trustme
from psycopg import sql
from sqlalchemy import func, select

from etl import db, schema
from etl.client import FIRST_CONTACT_ATTEMPTS
from etl.simulator import Simulator, World
from helpers import cli, cli_env, without_dac_override

NOWHERE = "http://127.0.0.1:9/api"  # never contacted: every case below fails before EM is asked


def one_line(done: subprocess.CompletedProcess, code: int, *phrases: str) -> str:
    """The single stderr line of a failed command, after checking its exit code and phrases."""
    lines = done.stderr.splitlines()
    assert done.returncode == code, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


def _run(url: str, db_url: str, *more: str, **kw) -> subprocess.CompletedProcess:
    return cli("run", "--url", url, "--user", "demo", "--db", db_url, *more, **kw)


@pytest.mark.parametrize(
    ("url", "phrases"),
    [
        ("http://127.0.0.1:99999/api", ["port 99999 is not a port number", "9398"]),
        ("https://em01:0/api", ["port 0 is not a port number"]),
        ("https://em01:ninety/api", ["port ninety is not a port number"]),
        ("em01:9398/api", ["--url em01:9398/api has no scheme", "https://em01:9398/api"]),
        ("ftp://em01.example.com/api", ["scheme ftp:// is not supported", "use https://"]),
        ("https:///api", ["has no host"]),
        ("https://em01:9398/api?x=1", ["query or fragment", "https://em01:9398/api"]),
    ],
)
def test_bad_em_url_is_exit_2_before_anything_is_touched(tmp_path, url, phrases):
    done = _run(url, f"sqlite:///{tmp_path}/w.db")
    one_line(done, 2, "veeam-etl: error: --url", *phrases)
    assert not (tmp_path / "w.db").exists()  # no warehouse opened, so no run row recorded either


def test_credentials_in_em_url_are_refused_without_repeating_them(tmp_path):
    done = _run("https://svc:Pa55word@em01:9398/api", f"sqlite:///{tmp_path}/w.db")
    line = one_line(done, 2, "--url carries a user or password", "--user", "VEEAM_EM_PASSWORD")
    assert "Pa55word" not in line


def test_bad_em_url_records_no_run_in_an_existing_warehouse(tmp_path):
    url = f"sqlite:///{tmp_path}/w.db"
    assert cli("migrate", "--db", url).returncode == 0
    one_line(_run("em01:9398/api", url), 2, "has no scheme")
    eng = db.engine(url)
    with eng.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(schema.etl_runs)) == 0
    eng.dispose()


def test_sqlite_directory_missing(tmp_path):
    missing = tmp_path / "no" / "such"
    for args in (["migrate"], ["run", "--url", NOWHERE, "--user", "demo"]):
        done = cli(*args, "--db", f"sqlite:///{missing}/w.db")
        one_line(done, 2, f"directory {missing} does not exist", f"mkdir -p {missing}")
    assert not (tmp_path / "no").exists()


def test_sqlite_directory_read_only(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "etl", "migrate", "--db", f"sqlite:///{ro}/w.db"],
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=120,
            stdin=subprocess.DEVNULL,
            preexec_fn=without_dac_override,
        )
    finally:
        ro.chmod(0o755)
    one_line(done, 2, f"directory {ro} is read-only", "make the directory writable")
    assert list(ro.iterdir()) == []


@pytest.mark.parametrize("command", ["run", "migrate", "status", "report"])
@pytest.mark.parametrize("memory", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
def test_in_memory_sqlite_is_refused(command, memory):
    args = ["--url", NOWHERE, "--user", "demo"] if command == "run" else []
    done = cli(command, *args, "--db", memory)
    one_line(done, 2, f"--db {memory} is an in-memory SQLite database", "keeps nothing", "sqlite:///veeam.db")


def test_db_schema_on_sqlite_is_refused(tmp_path):
    done = cli("migrate", "--db", f"sqlite:///{tmp_path}/w.db", "--db-schema", "veeam")
    one_line(done, 2, "--db-schema veeam applies to PostgreSQL only")
    done = cli("status", "--db", f"sqlite:///{tmp_path}/w.db", VEEAM_ETL_DB_SCHEMA="veeam")
    one_line(done, 2, "unset VEEAM_ETL_DB_SCHEMA")
    assert not (tmp_path / "w.db").exists()


def test_db_schema_that_is_not_a_name_is_refused(tmp_path):
    done = cli("migrate", "--db", f"sqlite:///{tmp_path}/w.db", "--db-schema", "veeam,public")
    one_line(done, 2, "--db-schema 'veeam,public' is not a plain schema name")


@pytest.fixture
def pg_database(pg):
    name = f"e_{uuid.uuid4().hex[:12]}"
    pg.create_database(name)
    yield name
    pg.drop_database(name)


def test_postgresql_schema_missing(pg, pg_database):
    url = pg.url(pg_database)
    for args in (["migrate"], ["run", "--url", NOWHERE, "--user", "demo"], ["status"], ["report"]):
        done = cli(*args, "--db", url, "--db-schema", "nosuch")
        one_line(
            done,
            2,
            f"schema nosuch does not exist in database {pg_database}",
            "CREATE SCHEMA nosuch AUTHORIZATION",
        )


def test_postgresql_role_that_may_not_create_in_public(pg, pg_database):
    """PostgreSQL 15 took CREATE on public away from every role but the database owner."""
    role = f"r_{uuid.uuid4().hex[:8]}"
    pg.create_role(role)
    try:
        with psycopg.connect(pg.psql_dsn(pg_database), autocommit=True) as admin:
            admin.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))  # the default since 15
        done = cli("migrate", "--db", pg.url(pg_database, role))
        one_line(
            done,
            2,
            f"role {role} may not create tables in schema public",
            f"CREATE SCHEMA veeam AUTHORIZATION {role}",
            "--db-schema veeam",
        )
    finally:
        pg.drop_database(pg_database)
        with psycopg.connect(pg.psql_dsn(), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.mark.parametrize("command", ["status", "report"])
def test_read_only_commands_never_create_a_warehouse(tmp_path, command):
    done = cli(command, cwd=tmp_path)  # the default sqlite:///veeam.db, relative to the directory
    one_line(done, 2, f"warehouse {tmp_path}/veeam.db does not exist", "veeam-etl migrate", "veeam-etl run")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["status", "report"])
def test_read_only_commands_on_a_warehouse_without_tables(db_url, tmp_path, command):
    if db_url.startswith("sqlite"):
        (tmp_path / "warehouse.db").touch()
    done = cli(command, "--db", db_url)
    one_line(done, 2, "has no tables yet", "veeam-etl migrate")
    eng = db.engine(db_url)
    assert db.current(eng) is None  # nothing was created to answer
    eng.dispose()


def test_click_usage_errors_are_one_line():
    one_line(cli("run", "--bogus"), 2, "veeam-etl: error: No such option", "run --help")
    one_line(cli("run", "--user", "demo"), 2, "Missing option '--url'")
    one_line(cli("run", "--url", NOWHERE, "--user", "demo", "--page-size", "0"), 2, "'--page-size'")


def test_json_logs_end_in_a_json_error_line(tmp_path):
    for args in (
        ["--log-format", "json", "run", "--url", "ftp://em01/api", "--user", "demo"],
        ["run", "--log-format", "json", "--url", "ftp://em01/api", "--user", "demo"],
        ["run", "--url", "ftp://em01/api", "--user", "demo", "--log-format=json", "-v"],
        ["run", "--bogus", "--log-format", "json"],  # a usage error, found before the options are read
    ):
        done = cli(*args, "--db", f"sqlite:///{tmp_path}/w.db")
        entry = json.loads(one_line(done, 2))
        assert entry["level"] == "error" and entry["logger"] == "etl.cli", entry
        assert "scheme ftp://" in entry["message"] or "No such option" in entry["message"]
    done = cli("run", "--url", "ftp://em01/api", "--user", "demo", VEEAM_ETL_LOG_FORMAT="json")
    assert json.loads(one_line(done, 2))["level"] == "error"


def test_global_options_after_the_command(tmp_path):
    url = f"sqlite:///{tmp_path}/w.db"
    with Simulator(World(seed=2, servers=1, jobs=1, vms_per_job=2, days=1)) as sim:
        done = _run(sim.url, url, "--log-format", "json", "-v", "-v")
    assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in done.stderr.splitlines()]
    assert {e["level"] for e in entries} >= {"info", "debug"}, entries
    # the user name is shown as it is, although the demo account's password is the same word
    assert any(e["message"].endswith(" as demo") for e in entries), entries
    done = cli("status", "-v", "--log-format", "text", "--db", url)
    assert done.returncode == 0 and "succeeded" in done.stdout, done.stderr


# --- mistakes only Enterprise Manager's answer reveals: one line, exit 1, never retried -------------


def test_https_to_a_plain_http_port_is_not_retried_and_says_which_side_speaks_what(tmp_path):
    with Simulator(World(seed=1, jobs=1, vms_per_job=2, days=1)) as sim:
        https = sim.url.replace("http://", "https://")
        done = _run(https, f"sqlite:///{tmp_path}/w.db")
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "answers plain HTTP, not HTTPS" in last and "http://" in last, last
    assert "retrying" not in done.stderr  # a protocol mismatch is not a transient failure


def _last_run(db_url: str) -> dict:
    eng = db.engine(db_url)
    with eng.connect() as conn:
        run = conn.execute(select(schema.etl_runs).order_by(schema.etl_runs.c.id.desc())).mappings().first()
    eng.dispose()
    assert run is not None
    return dict(run)


def test_a_closed_port_fails_after_few_attempts_naming_host_port_and_9398(tmp_path):
    """Nothing listens: not an EM restart to wait out (EM never answered in this run), so the default
    budget of 20 attempts is not spent; the last line names the fix."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    db_url = f"sqlite:///{tmp_path}/w.db"
    done = _run(f"http://127.0.0.1:{port}/api", db_url)
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"giving up after {FIRST_CONTACT_ATTEMPTS} attempts: cannot connect to 127.0.0.1:{port}" in last
    assert "check the host and port in the URL (--url)" in last and "9398 with https" in last, last
    run = _last_run(db_url)
    assert (run["requests"], run["retries"]) == (FIRST_CONTACT_ATTEMPTS, FIRST_CONTACT_ATTEMPTS - 1), run
    assert done.stderr.count("retrying in") == FIRST_CONTACT_ATTEMPTS - 1


def test_an_unknown_host_fails_after_few_attempts_naming_the_host(tmp_path):
    db_url = f"sqlite:///{tmp_path}/w.db"
    done = _run("https://em01.invalid:9398/api", db_url)  # .invalid never resolves (RFC 6761)
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1, done.stderr
    assert "cannot resolve the host name em01.invalid" in last and "check the host name" in last, last
    assert _last_run(db_url)["requests"] == FIRST_CONTACT_ATTEMPTS


def test_http_to_an_https_port_is_not_retried_and_names_the_https_url(tmp_path):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(ctx)
    db_url = f"sqlite:///{tmp_path}/w.db"
    with Simulator(World(seed=1, jobs=1, vms_per_job=2, days=1), ssl_context=ctx) as sim:
        https = sim.url
        done = _run(https.replace("https://", "http://"), db_url)
        served = sim.requests
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"speaks HTTPS, not plain HTTP: use {https.rstrip('/')}" in last, last
    assert "retrying" not in done.stderr and _last_run(db_url)["requests"] == 1
    assert served == 0  # no HTTP request reached EM: the password was never sent in cleartext


def test_a_url_without_the_api_base_hints_at_it(tmp_path):
    with Simulator(World(seed=1, jobs=1, vms_per_job=2, days=1)) as sim:
        done = _run(sim.url.removesuffix("/api"), f"sqlite:///{tmp_path}/w.db")
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "ending in /api" in last and "HTTP 404" in last, last


# --- cleartext: plain http:// to another machine is refused before any request -----------------------


class _Listener:
    """A TCP listener on every interface that counts the connections it accepts (and closes them)."""

    def __init__(self):
        self.sock = socket.create_server(("0.0.0.0", 0))  # noqa: S104 - reached by a non-loopback address
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self):
        self.sock.close()


def _own_address() -> str:
    """An address of this machine that is not loopback (the one a packet to the outside leaves from)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: it only picks the route
        except OSError:
            pytest.skip("this machine has no network interface but loopback")
        address = probe.getsockname()[0]
    if address.startswith("127."):
        pytest.skip("this machine has no network interface but loopback")
    return address


def test_plain_http_to_another_machine_is_refused_before_any_request(tmp_path):
    done = _run("http://em01.example.com/api", f"sqlite:///{tmp_path}/w.db")
    one_line(done, 2, "--url http://em01.example.com/api is plain HTTP", "https://em01.example.com:9398/api")
    assert "--allow-cleartext" in done.stderr and not (tmp_path / "w.db").exists()

    listener = _Listener()
    try:
        url = f"http://{_own_address()}:{listener.port}/api"
        refused = _run(url, f"sqlite:///{tmp_path}/w.db")
        one_line(refused, 2, f"--url {url} is plain HTTP", "https://")
        assert listener.accepted == 0  # not even a connection: the password never left
        # the opt-out: the request goes out, and the run says so loudly
        allowed = _run(url, f"sqlite:///{tmp_path}/w.db", "--allow-cleartext", "--retries", "1")
        assert allowed.returncode == 1 and listener.accepted >= 1, allowed.stderr
        assert "is plain HTTP (--allow-cleartext)" in allowed.stderr
    finally:
        listener.close()


def test_plain_http_in_an_estate_file_is_refused_unless_the_em_allows_it(tmp_path):
    estate = tmp_path / "estate.toml"
    estate.write_text(
        '[defaults]\nuser = "demo"\npassword_env = "PW"\n'
        '[[em]]\nname = "lab"\nurl = "http://em-lab.example.com:9399/api"\n'
        '[[em]]\nname = "sim"\nurl = "http://127.0.0.1:9/api"\n'
    )
    done = cli("run", "--config", str(estate), "--db", f"sqlite:///{tmp_path}/w.db")
    assert done.returncode == 2, done.stderr
    assert "em 'lab': key 'url' http://em-lab.example.com:9399/api is plain HTTP" in done.stderr
    assert "allow_cleartext = true" in done.stderr and "'sim'" not in done.stderr  # loopback is fine
    assert not (tmp_path / "w.db").exists()
    estate.write_text(estate.read_text().replace('name = "lab"\n', 'name = "lab"\nallow_cleartext = true\n'))
    done = cli("run", "--config", str(estate), "--db", f"sqlite:///{tmp_path}/w.db", "--retries", "1", PW="x")
    assert (
        "em 'lab': http://em-lab.example.com:9399/api is plain HTTP (allow_cleartext = true)" in done.stderr
    )
    clash = cli("run", "--config", str(estate), "--allow-cleartext")
    one_line(clash, 2, "--config excludes --allow-cleartext")


def test_since_in_the_future_is_refused(tmp_path):
    for args in (["--url", NOWHERE, "--user", "demo"], ["--config", str(tmp_path / "estate.toml")]):
        done = cli("run", *args, "--since", "2999-01-01", "--db", f"sqlite:///{tmp_path}/w.db")
        one_line(done, 2, "--since 2999-01-01 is in the future", "an instant in the past")
    assert not (tmp_path / "w.db").exists()


def test_verify_refuses_options_only_its_repair_uses(tmp_path):
    done = cli("verify", "--url", NOWHERE, "--user", "demo", "--page-size", "50", "--batch-rows", "10")
    one_line(done, 2, "--page-size, --batch-rows only apply to the reload of --repair", "add --repair")
    done = cli("verify", "--url", NOWHERE, "--user", "demo", "--full-refresh")
    one_line(done, 2, "--full-refresh only applies to the reload of --repair")
    # the options the counts use are fine without --repair (EM is not there: exit 1, not 2)
    assert cli("migrate", "--db", f"sqlite:///{tmp_path}/w.db").returncode == 0
    done = cli(
        "verify",
        "--url",
        NOWHERE,
        "--user",
        "demo",
        "--retries",
        "1",
        "--timeout",
        "5",
        "--db",
        f"sqlite:///{tmp_path}/w.db",
    )
    assert done.returncode != 2, done.stderr


# --- the progress line on a terminal: log lines are written above it, never over it ------------------


def _screen(raw: str) -> list[str]:
    """What a terminal shows for `raw` output: `\\r` returns to the start of the line (later text
    overwrites it), `\\n` starts a new one."""
    lines, line, col = [], [], 0
    for ch in raw:
        if ch == "\n":
            lines.append("".join(line).rstrip())
            line, col = [], 0
        elif ch == "\r":
            col = 0
        else:
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
    lines.append("".join(line).rstrip())
    return lines


def test_log_lines_and_the_progress_line_do_not_overwrite_each_other(tmp_path):
    import pty

    world = World(seed=21, servers=2, jobs=3, vms_per_job=4, days=3)  # undocumented values: warnings
    with Simulator(world) as sim:
        main, tty = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "etl", "run", "--url", sim.url, "--user", "demo"]
            + ["--db", f"sqlite:///{tmp_path}/w.db", "--page-size", "25", "--batch-rows", "25"],
            stdout=subprocess.PIPE,
            stderr=tty,
            stdin=subprocess.DEVNULL,
            env=cli_env(),
        )
        os.close(tty)
        raw = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            raw += chunk
        proc.wait(timeout=300)
        os.close(main)
    text = raw.decode(errors="replace").replace("\r\n", "\n")  # the tty turns \n into \r\n
    assert proc.returncode == 0, text
    assert "rows written" in text and "not a value EM documents" in text  # both were drawn
    log = re.compile(r"\d\d:\d\d:\d\d (INFO|WARNING) +etl[.\w]*: ")
    for line in _screen(text):
        if "rows written" in line or "in all tables" in line:
            assert not log.search(line), f"a log line over the progress line: {line!r}"
        elif line:
            assert log.match(line) and line.count(":") >= 3, f"a log line overwritten: {line!r}"
    assert _screen(text)[-1] == ""  # the progress line is gone at the end


@pytest.mark.parametrize(
    ("given", "working"),
    [
        ("postgres://etl:S3cret-pw@db01/veeam", "postgresql+psycopg://etl:***@db01/veeam"),
        (
            "postgresql+psycopg2://etl:S3cret-pw@db01:5432/veeam?sslmode=require",
            "postgresql+psycopg://etl:***@db01:5432/veeam?sslmode=require",
        ),
        ("postgresql+asyncpg://etl@db01/veeam", "postgresql+psycopg://etl@db01/veeam"),
    ],
)
def test_postgresql_urls_for_other_drivers_get_the_working_url(given, working):
    for command in ("status", "migrate"):
        line = one_line(cli(command, "--db", given), 2, "psycopg 3", f"--db {working}")
        assert line.endswith(f"--db {working}") and "S3cret-pw" not in line
