"""The warehouse connection and its schema: `warehouse()` checks the URL and what a command may do
there before connecting; `migrate()`/`ensure_current()` bring the schema to Alembic head under a
database lock (two first runs never race) and (re)create the reporting views (etl.views).
"""

from __future__ import annotations

import importlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from . import settings, views
from .errors import ConfigError, LockHeld, MigrationError

log = logging.getLogger(__name__)

MIGRATION_WAIT_S = 30  # how long a migration waits for another process's migration before giving up
_PG_MIGRATION_LOCK = 0x5645_4545_4D_4554  # pg_advisory_xact_lock key of veeam-etl migrations ("VEEEMET")
CREATE_HINT = "create it with `veeam-etl migrate` (or a first `veeam-etl run`)"


def _package_dir(name: str) -> Path:
    return Path(str(importlib.import_module(name).__file__)).resolve().parent


def masked(url: str) -> str:
    """A database URL safe to print: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "not a database URL (expected e.g. sqlite:///veeam.db or postgresql+psycopg://…)"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres" or (backend == "postgresql" and driver not in ("", "psycopg")):
        # postgres:// (Heroku, libpq URIs) is no SQLAlchemy scheme; other drivers are not installed
        fixed = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=True)
        what = "postgres:// is not a SQLAlchemy URL scheme" if backend == "postgres" else f"driver {driver}"
        raise ConfigError(
            f"--db {masked(url)}: {what}; veeam-etl talks to PostgreSQL with psycopg 3, which comes with it: "
            f"--db {fixed}"
        )
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"unsupported warehouse {backend!r}: use sqlite or postgresql")
    return parsed


def engine(url: str, schema: str | None = None, *, read_only: bool = False) -> Engine:
    """An engine for a SQLite or PostgreSQL warehouse; SQLite enforces foreign keys. `schema`
    (PostgreSQL only) becomes the connection's search_path. `read_only` (SQLite only) opens the file
    so that nothing can be written, without needing to write its directory (`_read_only_sqlite`).
    Raises ConfigError (bad URL, a schema on SQLite, a schema name that is not a plain identifier).
    Connects to nothing."""
    parsed = _parse(url)
    schema = settings.schema_name(schema)
    kwargs: dict = {}
    if schema and parsed.get_backend_name() == "sqlite":
        raise ConfigError(
            f"--db-schema {schema} applies to PostgreSQL only; a SQLite warehouse has no schemas: "
            "drop the flag (or unset VEEAM_ETL_DB_SCHEMA)"
        )
    if schema:
        kwargs["connect_args"] = {"options": f"-csearch_path={schema}"}
    if read_only and parsed.get_backend_name() == "sqlite":
        path = sqlite_file(url)
        assert path is not None
        kwargs["creator"] = lambda: _read_only_sqlite(path)
    try:
        eng = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(f"cannot use warehouse {masked(url)}: {exc}") from None
    if eng.dialect.name == "sqlite":
        event.listen(eng, "connect", _sqlite_read_pragmas if "creator" in kwargs else _sqlite_pragmas)
    return eng


def _read_only_sqlite(path: Path) -> sqlite3.Connection:
    """A connection that cannot write `path`, for readers that may not write it or its directory
    (`report`, `status`, `verify` without --repair on a warehouse another account loads).

    `mode=ro` sees every committed transaction, also those still in the WAL while a loader runs: it
    reads the -wal and -shm files the writer keeps beside the file (read-only ones too). When no
    writer is connected those files are gone, and a read-only opener could not create the -shm it
    needs; then the main file holds every commit, and it is opened `immutable` (read without locks
    or WAL). A loader that starts during such a read is not seen by it; its first checkpoint (after
    ~40 MB of WAL, or when it ends) rewrites pages a long read may be reading, so rerun a reader
    that fails with "database disk image is malformed" while a load is starting."""
    wal = path.with_name(path.name + "-wal")
    quiet = not wal.exists() or wal.stat().st_size == 0
    uri = f"file:{quote(str(path))}?mode=ro" + ("&immutable=1" if quiet else "")
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


def _sqlite_read_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA query_only=ON")
    cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cur.close()


def writable(path: Path) -> bool:
    """Whether this process may write a SQLite warehouse `path`: the file (when it exists) and its
    directory, where SQLite keeps the -wal and -shm files of WAL mode."""
    if path.exists() and not os.access(path, os.W_OK):
        return False
    return os.access(path.parent, os.W_OK | os.X_OK)


# SQLite's page cache per connection, where a load's random-uid index and FK lookups find their
# pages. 32 MB loads the benchmark's 100k-task estate as fast as 64 MB did and keeps the loader's
# peak memory at a million task sessions under 300 MB (bench/RESULTS.md)
SQLITE_CACHE_KIB = 32 * 1024


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    _wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cur.execute("PRAGMA wal_autocheckpoint=10000")  # checkpoint (and fsync) every ~40 MB of WAL, not 4 MB
    cur.close()


def _wal(cur) -> None:
    """Put the file in WAL mode (readers never wait for the writer), once. Asking the mode of a
    file already in WAL takes no lock; switching does, and SQLite answers "database is locked" at
    once, without its busy handler, while another process holds the file: so wait for it here."""
    if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + 30
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# ---------------------------------------------------------------- opening a warehouse, checked


def sqlite_file(url: str) -> Path | None:
    """The absolute path of a SQLite warehouse's file; None for PostgreSQL. Raises ConfigError for
    an in-memory database (``sqlite://``, ``sqlite:///``, ``:memory:``, ``mode=memory``), which
    keeps nothing once the command ends."""
    parsed = _parse(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or parsed.query.get("mode") == "memory"
    ):
        raise ConfigError(
            f"--db {url} is an in-memory SQLite database, which keeps nothing once the command ends: "
            "name a file, e.g. sqlite:///veeam.db"
        )
    if database.startswith("file:"):  # a SQLite URI filename (?uri=true): what it names is SQLite's business
        return Path(database[len("file:") :].partition("?")[0]).absolute()
    return Path(database).absolute()


def _check_sqlite_file(url: str, path: Path, mode: str) -> None:
    """Raise ConfigError when SQLite could not open `path` for `mode`, naming the path and the cause.
    Reading never creates the file."""
    if mode == "read":
        if not path.exists():
            raise ConfigError(f"warehouse {path} does not exist (--db {url}): {CREATE_HINT}")
        if path.is_dir():
            raise ConfigError(f"--db {url} names a directory, {path}: name a file, e.g. sqlite:///veeam.db")
        if not os.access(path, os.R_OK):
            raise ConfigError(f"warehouse {path} is not readable by this user: check its permissions")
        return
    directory = path.parent
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise ConfigError(
            f"--db {url}: directory {directory} {what}: create it (mkdir -p {directory}) or choose another path"
        )
    if path.is_dir():
        raise ConfigError(f"--db {url} names a directory, {path}: name a file, e.g. sqlite:///veeam.db")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise ConfigError(
            f"warehouse {path} is read-only for this user: make it writable or choose another --db"
        )
    # SQLite creates the file and, in WAL mode, its -wal and -shm files beside it
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(
            f"--db {url}: directory {directory} is read-only for this user, and SQLite writes its file and "
            "journal there: make the directory writable or choose another path"
        )


def _user_and_database(eng: Engine) -> tuple[str, str]:
    return eng.url.username or "your role", eng.url.database or "your database"


def _check_postgresql(conn: Connection, eng: Engine, schema: str | None, mode: str) -> None:
    role, database = _user_and_database(eng)
    if schema and not conn.scalar(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}):
        raise ConfigError(
            f"schema {schema} does not exist in database {database}: create it as a superuser "
            f"(CREATE SCHEMA {schema} AUTHORIZATION {role};) or choose another --db-schema"
        )
    where = conn.scalar(text("SELECT current_schema()"))
    if where is None:
        path = conn.scalar(text("SELECT current_setting('search_path')"))
        raise ConfigError(
            f"role {role} has no schema to use in database {database} (its search_path {path} names none "
            f"that exists): create one (CREATE SCHEMA veeam AUTHORIZATION {role};) and pass --db-schema veeam"
        )
    creates = mode == "migrate" or (mode == "write" and revision(conn) != head())
    if creates and not conn.scalar(text("SELECT has_schema_privilege(current_schema(), 'CREATE')")):
        raise ConfigError(
            f"role {role} may not create tables in schema {where} of database {database} (PostgreSQL 15 "
            f"and later let only the database owner create in public): create a schema it owns "
            f"(CREATE SCHEMA veeam AUTHORIZATION {role};) and pass --db-schema veeam, or "
            f"ALTER ROLE {role} IN DATABASE {database} SET search_path = veeam"
        )


def warehouse(url: str, schema: str | None = None, *, mode: str) -> Engine:
    """An engine for the warehouse, after checking that `mode` can work on it, or ConfigError.

    `mode`: "read" (report, status, metrics, verify without --repair: the warehouse must exist and be
    migrated; nothing is created; a SQLite file whose directory this user may not write is opened
    read-only, see `_read_only_sqlite`: this is the one way to open a warehouse only to read it),
    "write" (run: SQLite's directory must be writable; on PostgreSQL the schema must exist and, when
    a migration is due, allow CREATE) or "migrate" (like write, CREATE always). In-memory SQLite is
    refused. SQLite is checked on the file system before anything is opened; PostgreSQL is asked
    (read-only queries). Connection failures propagate as SQLAlchemyError.
    """
    if mode not in ("read", "write", "migrate"):
        raise ValueError(f"mode {mode!r}")
    path = sqlite_file(url)
    eng = engine(url, schema, read_only=mode == "read" and path is not None and not writable(path))
    if path is not None:
        _check_sqlite_file(url, path, mode)
    try:
        with eng.connect() as conn:
            if eng.dialect.name == "postgresql":
                _check_postgresql(conn, eng, settings.schema_name(schema), mode)
            if mode == "read" and revision(conn) is None:
                where = path or masked(url)
                raise ConfigError(f"warehouse {where} has no tables yet: {CREATE_HINT}")
    except BaseException:
        eng.dispose()
        raise
    return eng


# ---------------------------------------------------------------- schema: Alembic and the views


def alembic_config() -> Config:
    """Alembic's configuration for migrations/ (shipped as etl.migrations). The same env.py serves
    `alembic upgrade head` and `veeam-etl migrate`: the caller hands it its connection through
    `config.attributes["connection"]`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_package_dir("etl.migrations")))
    return cfg


def head() -> str:
    """The newest revision of migrations/."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None, "migrations/ has no revision"
    return revision


def revision(conn: Connection) -> str | None:
    """The warehouse's Alembic revision seen through `conn`; None when it was never migrated."""
    return MigrationContext.configure(conn).get_current_revision()


def current(eng: Engine) -> str | None:
    with eng.connect() as conn:
        return revision(conn)


def create_views(conn: Connection) -> None:
    """Drop and re-create every reporting view (etl.views) inside the caller's transaction."""
    views.drop(conn)
    for sql in views.definitions(conn.dialect.name).values():
        conn.execute(text(sql))


@contextmanager
def migration_lock(eng: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that holds the warehouse's migration lock; committed when the
    block ends, rolled back on an exception. PostgreSQL: a transaction-scoped advisory lock; SQLite: the
    write lock (BEGIN IMMEDIATE). Waits up to MIGRATION_WAIT_S for another process, then raises LockHeld.

    On SQLite, foreign keys are off during the migration and checked as a whole before the commit
    (SQLite's own procedure for rebuilding a table: a batch migration of a table other tables
    reference would otherwise fail on the implicit DELETE of its DROP); a violation rolls back.
    """
    with eng.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        try:
            if sqlite:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={MIGRATION_WAIT_S * 1000}")
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: before BEGIN
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                before = conn.scalar(text("SELECT current_setting('lock_timeout')"))
                conn.execute(
                    text("SELECT set_config('lock_timeout', :t, true)"), {"t": f"{MIGRATION_WAIT_S}s"}
                )
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.execute(text("SELECT set_config('lock_timeout', :t, true)"), {"t": before})
        except OperationalError as exc:
            conn.rollback()
            sqlstate = getattr(exc.orig, "sqlstate", None)
            if sqlstate == "55P03" or "database is locked" in str(exc.orig):
                raise LockHeld(
                    f"another process has been migrating warehouse {masked(str(eng.url))} for "
                    f"{MIGRATION_WAIT_S} s: try again later"
                ) from None
            raise
        try:
            yield conn
            if sqlite:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise MigrationError(
                        f"the migration would break {len(broken)} foreign keys, e.g. {broken[0]}"
                    )
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")  # after the transaction: it only works there


def migrate(eng: Engine, revision: str = "head") -> None:
    """Upgrade the warehouse to `revision` and (re)create the reporting views, under the migration
    lock. Raises LockHeld (another process kept migrating) or MigrationError (the database refused:
    rolled back)."""
    _upgrade(eng, revision, only_if_behind=False)


def ensure_current(eng: Engine) -> None:
    """Bring an empty or older warehouse to head; a no-op when it is already there, also when another
    process migrated it while this one waited for the migration lock. Raises as `migrate`."""
    if current(eng) != head():
        log.info("migrating warehouse %s to %s", masked(str(eng.url)), head())
        _upgrade(eng, "head", only_if_behind=True)


def _upgrade(eng: Engine, target: str, only_if_behind: bool) -> None:
    cfg = alembic_config()
    try:
        with migration_lock(eng) as conn:
            if only_if_behind and revision(conn) == head():
                return
            views.drop(conn)  # SQLite batch migrations rebuild tables that views name
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, target)
            create_views(conn)
    except SQLAlchemyError as exc:
        raise MigrationError(
            f"migrating {masked(str(eng.url))} failed: {type(exc).__name__}: "
            f"{getattr(exc, 'orig', None) or exc}"
        ) from None
