"""Start a throwaway PostgreSQL cluster on loopback for tests, and tear it down again.

Stdlib + psycopg only. Drops privileges to the `postgres` (or `nobody`) user when run as root.
Run `python tests/pgserver.py` to start a server by hand; it prints the admin URL and waits for Ctrl-C.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

SERVER_CONF = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "128MB",
}


def _version_key(path: str) -> tuple:
    name = path.split("/")[-2]  # /usr/lib/postgresql/<ver>/bin
    return tuple(int(p) if p.isdigit() else 0 for p in name.split("."))


def find_bindir() -> tuple[str | None, list[str]]:
    """Return (bindir or None, list of places searched)."""
    searched: list[str] = []
    env = os.environ.get("PG_BIN")
    if env:
        searched.append(f"$PG_BIN={env}")
        return (env if os.access(os.path.join(env, "initdb"), os.X_OK) else None), searched
    pg_config = shutil.which("pg_config")
    searched.append("pg_config --bindir")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            cand = out.stdout.strip()
            if out.returncode == 0 and os.access(os.path.join(cand, "initdb"), os.X_OK):
                return cand, searched
        except (OSError, subprocess.SubprocessError):
            pass
    searched.append("/usr/lib/postgresql/*/bin")
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if os.access(os.path.join(cand, "initdb"), os.X_OK):
            return cand, searched
    searched.append("initdb on PATH")
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(os.path.realpath(initdb)), searched
    return None, searched


def available() -> tuple[bool, str]:
    """Whether PostgreSQL server binaries can be found (does not start anything)."""
    bindir, searched = find_bindir()
    if bindir is None:
        return False, "PostgreSQL binaries (initdb) not found; searched: " + ", ".join(searched)
    return True, f"found {bindir}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _world_traversable(path: str) -> bool:
    path = os.path.realpath(path)
    while True:
        if not os.stat(path).st_mode & stat.S_IXOTH:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


class PostgresServer:
    """A throwaway PostgreSQL cluster: `with PostgresServer() as pg: engine = create_engine(pg.url("x"))`."""

    def __init__(self, bindir: str | None = None, start_timeout: int = 60):
        self.bindir = bindir
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.tmpdir: str | None = None
        self._run_as: pwd.struct_passwd | None = None
        self._running = False

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def datadir(self) -> str:
        return os.path.join(self.tmpdir, "data")

    @property
    def logfile(self) -> str:
        return os.path.join(self.tmpdir, "postgres.log")

    def _bin(self, name: str) -> str:
        return os.path.join(self.bindir, name)

    def _run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess:
        kwargs: dict = {}
        if self._run_as is not None:
            kwargs = {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        if self._run_as is not None:
            env.update(HOME=self.tmpdir, USER=self._run_as.pw_name, LOGNAME=self._run_as.pw_name)
        return subprocess.run(
            args, cwd=self.tmpdir, env=env, capture_output=True, text=True, timeout=timeout, **kwargs
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.logfile, errors="replace") as fh:
                return "".join(fh.readlines()[-lines:])
        except OSError:
            return "(no server log)"

    def start(self) -> PostgresServer:
        if self._running:
            return self
        if self.bindir is None:
            self.bindir, searched = find_bindir()
            if self.bindir is None:
                raise RuntimeError("PostgreSQL binaries (initdb) not found; searched: " + ", ".join(searched))
        parent = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self._run_as = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            else:
                raise RuntimeError("running as root but neither 'postgres' nor 'nobody' user exists")
            if not _world_traversable(tempfile.gettempdir()):
                parent = "/tmp"  # noqa: S108 - mkdtemp below; needs a dir the dropped user can traverse
        self.tmpdir = tempfile.mkdtemp(prefix="veeam-etl-pg-", dir=parent)
        atexit.register(self.stop)
        try:
            if self._run_as is not None:
                os.chown(self.tmpdir, self._run_as.pw_uid, self._run_as.pw_gid)
            initdb_opts = ["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]
            res = self._run([self._bin("initdb"), "-D", self.datadir, *initdb_opts], timeout=120)
            if res.returncode != 0:
                raise RuntimeError(f"initdb failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
            for attempt in range(3):  # a picked port can be grabbed by someone else before we bind it
                self.port = _free_port()
                self._write_conf()
                start = ["-l", self.logfile, "-w", "-t", str(self.start_timeout), "start"]
                res = self._run(
                    [self._bin("pg_ctl"), "-D", self.datadir, *start], timeout=self.start_timeout + 30
                )
                if res.returncode == 0:
                    break
                if "could not bind" not in self._log_tail() or attempt == 2:
                    raise RuntimeError(
                        f"pg_ctl start failed ({res.returncode}): {res.stderr.strip()}\n"
                        f"--- server log tail ---\n{self._log_tail()}"
                    )
            self._running = True
            with psycopg.connect(self.psql_dsn("postgres"), connect_timeout=10) as conn:
                conn.execute("SELECT 1")
        except BaseException:
            self.stop()
            raise
        return self

    def _write_conf(self) -> None:
        conf = dict(SERVER_CONF, port=str(self.port), unix_socket_directories=f"'{self.tmpdir}'")
        path = os.path.join(self.datadir, "postgresql.auto.conf")
        with open(path, "w") as fh:
            fh.write("".join(f"{k} = {v}\n" for k, v in conf.items()))
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def stop(self) -> None:
        """Stop the server (immediate mode) and delete the temp dir. Safe to call repeatedly."""
        if self.tmpdir is None:
            return
        if os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self._run(
                    [self._bin("pg_ctl"), "-D", self.datadir, "-m", "immediate", "-w", "-t", "30", "stop"],
                    timeout=60,
                )
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        self.tmpdir = None
        self._running = False
        atexit.unregister(self.stop)

    # -- connection helpers ------------------------------------------------
    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, dbname: str, user: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver) for `dbname`."""
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{dbname}"

    def psql_dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        """libpq conninfo string for raw psycopg / psql use."""
        return make_conninfo(host="127.0.0.1", port=str(self.port), user=user, dbname=dbname)

    def _admin(self, query: sql.Composable) -> None:
        with psycopg.connect(self.psql_dsn("postgres"), autocommit=True) as conn:
            conn.execute(query)

    def create_database(self, name: str, owner: str | None = None) -> None:
        q = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner:
            q = q + sql.SQL(" OWNER {}").format(sql.Identifier(owner))
        self._admin(q)

    def drop_database(self, name: str) -> None:
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def create_role(self, name: str, password: str | None = None, login: bool = True) -> None:
        q = sql.SQL("CREATE ROLE {} {}").format(
            sql.Identifier(name), sql.SQL("LOGIN" if login else "NOLOGIN")
        )
        if password is not None:
            q = q + sql.SQL(" PASSWORD {}").format(sql.Literal(password))
        self._admin(q)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the server too, not just Ctrl-C
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background (SIGINT ignored)
    t0 = time.monotonic()
    with PostgresServer() as pg:
        print(f"PostgreSQL up in {time.monotonic() - t0:.1f}s: {pg.admin_url}", flush=True)
        print(f'psql "{pg.psql_dsn()}"   (Ctrl-C to stop)', flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping")
