"""The warehouse schema, the one definition that load, migrations, reports, tests and the data dictionary use:
`metadata` and every table, each table and column with its `comment` (meaning, unit, source; PostgreSQL stores
them). Entity tables by family as EM names them (`inventory`, `sessions`, `points`), the loader's own tables in
`bookkeeping`, what they are built from in `columns`. Imports nothing from etl outside this package."""

from __future__ import annotations

from sqlalchemy import Table

from .bookkeeping import (
    etl_locks,
    etl_quarantine,
    etl_runs,
    etl_settings,
    etl_sweeps,
    etl_undocumented_values,
    etl_watermarks,
)
from .columns import (
    DERIVED,
    KEPT,
    META_COLUMNS,
    UTCDateTime,
    meta_values,
    metadata,
    now_utc,
    shared_columns,
)
from .columns import _load_metadata as _load_metadata  # for tests that declare a table of their own
from .inventory import backup_servers, backups, jobs, replicas, repositories, repository_space
from .points import agent_restore_points, backup_files, restore_points, vm_replica_points, vm_restore_points
from .sessions import backup_job_sessions, backup_task_sessions, replica_job_sessions, replica_task_sessions

__all__ = [
    "DERIVED",
    "IN_LIST",
    "KEPT",
    "META_COLUMNS",
    "UTCDateTime",
    "agent_restore_points",
    "backup_files",
    "backup_job_sessions",
    "backup_servers",
    "backup_task_sessions",
    "backups",
    "etl_locks",
    "etl_quarantine",
    "etl_runs",
    "etl_settings",
    "etl_sweeps",
    "etl_undocumented_values",
    "etl_watermarks",
    "jobs",
    "meta_values",
    "metadata",
    "now_utc",
    "replica_job_sessions",
    "replica_task_sessions",
    "replicas",
    "repositories",
    "repository_space",
    "restore_points",
    "shared_columns",
    "table",
    "vm_replica_points",
    "vm_restore_points",
]

IN_LIST = 500  # values per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


def table(name: str) -> Table:
    """The table named `name`. Raises KeyError."""
    return metadata.tables[name]
