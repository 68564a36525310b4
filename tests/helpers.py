"""Helpers shared by the test modules: the CLI as a subprocess, and the warehouse compared with the
simulator's ground truth. Fixtures live in conftest.py; plain functions live here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, select

from etl import registry
from etl.load import data_columns

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
# Variables that would change what a CLI subprocess does behind the test's back.
_FOREIGN_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")


def cli_env(password: str | None = "demo", **env: str) -> dict[str, str]:
    """This process's environment without any VEEAM_* or TLS-trust variable, plus `env`; the EM
    password in VEEAM_EM_PASSWORD unless `password` is None."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VEEAM_") and k not in _FOREIGN_ENV}
    if password is not None:
        environ["VEEAM_EM_PASSWORD"] = password
    environ.update(env)
    return environ


def cli(
    *args: str, password: str | None = "demo", timeout: float = 300, cwd: str | Path | None = None, **env: str
) -> subprocess.CompletedProcess:
    """`python -m etl ARGS` in a clean environment (see cli_env), stdin closed, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "etl", *args],
        capture_output=True,
        text=True,
        env=cli_env(password, **env),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )


def dump(eng: Engine, with_meta: bool = False, source: str | None = None) -> dict[str, dict[str, dict]]:
    """{table: {uid: row}} of the entity tables (data columns; all columns with `with_meta`), only
    the rows of `source` when given."""
    out = {}
    with eng.connect() as conn:
        for table in registry.tables():
            cols = list(table.columns) if with_meta else [table.c[n] for n in data_columns(table)]
            query = select(*cols) if source is None else select(*cols).where(table.c.source == source)
            out[table.name] = {r["uid"]: dict(r) for r in conn.execute(query).mappings()}
    return out


def assert_equal_to_truth(
    eng: Engine, truth: dict[str, dict[str, dict]], source: str | None = None, retired: bool = False
) -> None:
    """Every table of `truth` holds exactly its rows, column for column (of `source` only, when
    given). With `retired`, rows EM no longer lists are allowed beside them, when marked deleted."""
    got = dump(eng, source=source)
    for table, rows in truth.items():
        assert table in got, f"the warehouse has no table {table}"
        have = got[table]
        if retired:
            have = {uid: row for uid, row in have.items() if uid in rows or row.get("deleted_at") is None}
        missing = sorted(set(rows) - set(have))[:3]
        extra = sorted(set(have) - set(rows))[:3]
        assert not missing and not extra, f"{table}: missing {missing}, unexpected {extra}"
        for uid, expected in rows.items():
            row = have[uid]
            diff = {k: (row.get(k), v) for k, v in expected.items() if row.get(k) != v}
            assert not diff, f"{table} {uid}: (warehouse, truth) differ: {diff}"
