"""Warehouse connections and schema management: engine(url), migrate() to Alembic head + views.

The same migrations/env.py serves `alembic upgrade head` and `veeam-etl migrate`: we hand it our
connection through `config.attributes["connection"]`. Views are (re)created from sql/ after upgrade.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from . import views
from .errors import ConfigError, LoadError

log = logging.getLogger(__name__)


def _package_dir(name: str) -> Path:
    return Path(importlib.import_module(name).__file__).resolve().parent


def masked(url: str) -> str:
    """A database URL safe to print: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def engine(url: str, schema: str | None = None) -> Engine:
    """An engine for a SQLite or PostgreSQL warehouse; SQLite enforces foreign keys."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "not a database URL (expected e.g. sqlite:///veeam.db or postgresql+psycopg://…)"
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"unsupported warehouse {parsed.get_backend_name()!r}: use sqlite or postgresql")
    kwargs = {}
    if parsed.get_backend_name() == "postgresql" and schema:
        kwargs["connect_args"] = {"options": f"-csearch_path={schema}"}
    try:
        eng = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(f"cannot use warehouse {masked(url)}: {exc}") from None
    if eng.dialect.name == "sqlite":
        event.listen(eng, "connect", _sqlite_pragmas)
    return eng


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-65536")  # 64 MB: random-uid index and FK lookups stay in memory
    cur.execute("PRAGMA wal_autocheckpoint=10000")  # checkpoint (and fsync) every ~40 MB of WAL, not 4 MB
    cur.close()


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_package_dir("etl.migrations")))
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current(eng: Engine) -> str | None:
    with eng.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(eng: Engine, revision: str = "head") -> None:
    """Upgrade the warehouse to `revision` and (re)create the reporting views."""
    cfg = alembic_config()
    try:
        with eng.begin() as conn:
            views.drop(conn)  # SQLite batch migrations rebuild tables that views name
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        views.create(eng)
    except SQLAlchemyError as exc:
        raise LoadError(
            f"migrating {masked(str(eng.url))} failed: {type(exc).__name__}: {exc.orig or exc}"
        ) from None


def ensure_current(eng: Engine) -> None:
    """Bring an empty or older warehouse to head; a no-op when it is already there."""
    if current(eng) != head():
        log.info("migrating warehouse %s to %s", masked(str(eng.url)), head())
        migrate(eng)
