"""Helpers shared by the test modules: the CLI as a subprocess, the warehouse compared with the
simulator's ground truth, and a warehouse filled by hand. Fixtures live in conftest.py; plain functions
and classes live here."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, select, text

from etl import db, registry, report, schema
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


def without_dac_override() -> None:
    """For `preexec_fn`: run the child without the capabilities that let root read and write any file
    (a no-op for other users), so that file permissions bind it as they bind a service account."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone after exec
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


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


def truth_rows(truth: dict[str, dict[str, dict]]) -> dict[str, list[dict]]:
    """The simulator's truth as rows to insert per entity table, parents first: a table the truth does not
    hold is empty, and a job or replica that a session or replica point names but the truth lacks is
    added as a placeholder, as the loader records a parent known only from a link."""
    out = {table.name: list(truth.get(table.name, {}).values()) for table in registry.tables()}
    jobs = {r["uid"] for r in out["jobs"]}
    for s in out["replica_job_sessions"] + out["backup_job_sessions"]:
        if s.get("job_uid") and s["job_uid"] not in jobs:
            jobs.add(s["job_uid"])
            out["jobs"].append({"uid": s["job_uid"], "name": s.get("job_name"), "placeholder": True})
    replicas = {r["uid"] for r in out["replicas"]}
    for p in out["vm_replica_points"]:
        if p.get("replica_uid") and p["replica_uid"] not in replicas:
            replicas.add(p["replica_uid"])
            out["replicas"].append({"uid": p["replica_uid"], "placeholder": True})
    return out


class Warehouse:
    """A migrated warehouse with one etl_runs row, and terse helpers to add entity rows by hand."""

    def __init__(self, url: str):
        self.eng = db.engine(url)
        db.migrate(self.eng)
        self.loaded = datetime(2025, 1, 1, tzinfo=UTC)
        with self.eng.begin() as conn:
            self.run_id = conn.execute(
                insert(schema.etl_runs)
                .values(source="test", started_at=self.loaded, status="succeeded", mode="full")
                .returning(schema.etl_runs.c.id)
            ).scalar()
        self._ids = 0

    def meta(self) -> dict:
        return schema.meta_values("test", self.run_id, self.loaded)

    def add(self, table, **row) -> str:
        """Insert one row of entity table `table` (a uid is made up when none is given); returns its uid."""
        if "uid" not in row:
            self._ids += 1
            row["uid"] = f"urn:veeam:{table.name}:{self._ids}"
        if "placeholder" in table.c and "placeholder" not in row:
            row["placeholder"] = False
        with self.eng.begin() as conn:
            conn.execute(insert(table).values(**row, **self.meta()))
        return row["uid"]

    def ensure(self, table, uid: str, **row) -> str:
        """The row `uid` of `table`, inserted with `row` when it is not there yet."""
        with self.eng.connect() as conn:
            if conn.execute(select(table.c.uid).where(table.c.uid == uid)).first() is None:
                self.add(table, uid=uid, **row)
        return uid

    def rows(self, view: str, where: str = "", **params) -> list[dict]:
        with self.eng.connect() as conn:
            return report.read_view(conn, view, where, **params)

    def close(self) -> None:
        self.eng.dispose()


def add_backup_estate(eng: Engine, now: datetime, run_id: int = 1) -> None:
    """A small backup side written straight into the warehouse of `eng`, relative to `now`, on which each
    backup dashboard query of docs/bi.md has rows: a job whose failed run a retry recovered, a run still
    going, VMs with a fresh, an old and no restore point, a failed task, a repository low on space with a
    week of history, and a backup with files."""
    h = timedelta(hours=1)
    meta = schema.meta_values("bi-example", run_id, now)
    srv, job, repo = "urn:veeam:BackupServer:bi", "urn:veeam:Job:bi", "urn:veeam:Repository:bi"
    sessions = [  # uid, start, end, state, result, is_retry
        ("s1", now - 50 * h, now - 49 * h, "Stopped", "Success", False),
        ("s2", now - 26 * h, now - 25 * h, "Stopped", "Failed", False),
        ("s3", now - 24 * h, now - 23 * h, "Stopped", "Success", True),
        ("s4", now - h, None, "Working", "Success", False),
    ]
    tasks = [  # uid, session, vm, start, end, state, result, reason
        ("t1", "s2", "vm-fresh", now - 26 * h, now - 25 * h, "Completed", "Failed", "snapshot failed"),
        ("t2", "s3", "vm-fresh", now - 24 * h, now - 23 * h, "Completed", "Success", None),
        ("t3", "s2", "vm-old", now - 26 * h, now - 25 * h, "Completed", "Warning", "CBT reset"),
        ("t4", "s4", "vm-none", now - h, None, "InProgress", "Success", None),
    ]
    with eng.begin() as conn:
        conn.execute(insert(schema.backup_servers).values(uid=srv, name="vbr-bi", placeholder=False, **meta))
        conn.execute(
            insert(schema.jobs).values(
                uid=job, backup_server_uid=srv, name="BI Backup", placeholder=False, **meta
            )
        )
        for uid, start, end, state, result, retry in sessions:
            conn.execute(
                insert(schema.backup_job_sessions).values(
                    uid=f"urn:veeam:BackupJobSession:bi-{uid}",
                    backup_server_uid=srv,
                    job_uid=job,
                    job_name="BI Backup",
                    job_type="Backup",
                    name=f"BI Backup@{start}",
                    creation_time_utc=start,
                    end_time_utc=end,
                    state=state,
                    result=result,
                    is_retry=retry,
                    placeholder=False,
                    **meta,
                )
            )
        for uid, session, vm, start, end, state, result, reason in tasks:
            conn.execute(
                insert(schema.backup_task_sessions).values(
                    uid=f"urn:veeam:BackupTaskSession:bi-{uid}",
                    job_session_uid=f"urn:veeam:BackupJobSession:bi-{session}",
                    backup_server_uid=srv,
                    vm_display_name=vm,
                    vm_uid=f"urn:VMware:Vm:bi.{vm}",
                    name=f"{vm}@{start}",
                    creation_time_utc=start,
                    end_time_utc=end,
                    state=state,
                    result=result,
                    reason=reason,
                    total_size=40 * 2**30,
                    **meta,
                )
            )
        conn.execute(
            insert(schema.repositories).values(
                uid=repo,
                backup_server_uid=srv,
                name="BI Repo",
                kind="WindowsLocal",
                capacity=1000 * 2**30,
                free_space=50 * 2**30,
                placeholder=False,
                **meta,
            )
        )
        for days, free in ((8, 120), (1, 60), (0, 50)):
            conn.execute(
                insert(schema.repository_space).values(
                    repository_uid=repo,
                    run_id=run_id * 1000 + days,
                    source="bi-example",
                    observed_at=now - timedelta(days=days),
                    capacity=1000 * 2**30,
                    free_space=free * 2**30,
                )
            )
        backup = "urn:veeam:Backup:bi"
        conn.execute(
            insert(schema.backups).values(
                uid=backup,
                backup_server_uid=srv,
                repository_uid=repo,
                job_uid=job,
                name="BI Backup",
                platform="VMware",
                backup_type="Standard",
                placeholder=False,
                **meta,
            )
        )
        point = "urn:veeam:RestorePoint:bi"
        conn.execute(
            insert(schema.restore_points).values(
                uid=point,
                backup_uid=backup,
                backup_server_uid=srv,
                name="bi",
                backup_date_utc=now - 23 * h,
                placeholder=False,
                **meta,
            )
        )
        for n, (name, size, data) in enumerate((("BI.vbk", 200, 600), ("BI-1.vib", 20, 50))):
            conn.execute(
                insert(schema.backup_files).values(
                    uid=f"urn:veeam:BackupFile:bi-{n}",
                    backup_uid=backup,
                    backup_server_uid=srv,
                    name=name,
                    file_type=name.rsplit(".", 1)[1],
                    backup_size=size * 2**30,
                    data_size=data * 2**30,
                    creation_time_utc=now - 23 * h,
                    placeholder=False,
                    **meta,
                )
            )
        for vm, hours in (("vm-fresh", 23), ("vm-old", 49)):
            conn.execute(
                insert(schema.vm_restore_points).values(
                    uid=f"urn:veeam:VmRestorePoint:bi-{vm}",
                    restore_point_uid=point,
                    backup_server_uid=srv,
                    name=f"{vm}@x",
                    vm_display_name=vm,
                    hierarchy_obj_ref=f"urn:VMware:Vm:bi.{vm}",
                    creation_time_utc=now - hours * h,
                    placeholder=False,
                    **meta,
                )
            )


def catalog_comments(conn) -> dict[tuple[str, str | None], str | None]:
    """{(table, None): table comment, (table, column): column comment} of the warehouse's tables, from
    PostgreSQL's catalog (`obj_description`, `col_description`), in the schema the connection uses."""
    rows = conn.execute(
        text(
            "SELECT c.relname, NULL, obj_description(c.oid, 'pg_class') FROM pg_class c "
            "WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace "
            "UNION ALL "
            "SELECT c.relname, a.attname, col_description(c.oid, a.attnum) FROM pg_class c "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace"
        )
    ).all()
    return {(table, column): comment for table, column, comment in rows if table != "alembic_version"}


def declared_comments() -> dict[tuple[str, str | None], str | None]:
    """The same, as etl.schema declares them."""
    out: dict[tuple[str, str | None], str | None] = {}
    for table in schema.metadata.sorted_tables:
        out[(table.name, None)] = table.comment
        out.update({(table.name, c.name): c.comment for c in table.columns})
    return out
