"""The warehouse schema: the one definition that load, migrations, reports and tests use.

Entity tables are keyed by the EM UID and carry the load metadata (source, first/last loaded,
run id). Bookkeeping tables (etl_*) hold runs, watermarks, locks, quarantine and settings.
Imports nothing from the rest of etl.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator):
    """An instant: ``timestamptz`` on PostgreSQL; on SQLite stored as UTC text and read back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: instants must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


def _uid() -> Column:
    return Column("uid", String(200), primary_key=True)


def _server() -> Column:
    return Column("backup_server_uid", String(200), ForeignKey("backup_servers.uid"))


def _placeholder() -> Column:
    """Marks a row recorded only from a child's link (EM answered 404 for it)."""
    return Column("placeholder", Boolean, nullable=False, default=False)


def _deleted_at() -> Column:
    """When a retention sweep found EM no longer lists the object (NULL while it does)."""
    return Column("deleted_at", UTCDateTime)


# A column the loader fills itself (from a lookup or an inference), not from the entity: a NULL
# from EM never overwrites what is there (etl.load).
KEPT = {"kept": True}


def _job_by_filter() -> list[Column]:
    """The job of a backup or replica, which no entity names (etl.reconcile works it out), and where
    that value came from: `query` (EM's answer to a `JobUid` query filter), `link` (the points its
    job's tasks link), `parent` (an agent child backup given its parent backup's job); NULL when the
    job is not known."""
    return [
        Column("job_uid", String(200), ForeignKey("jobs.uid"), info=KEPT),
        Column("job_uid_source", String(20), info=KEPT),
    ]


def _load_metadata() -> list[Column]:
    """Columns every entity table carries; `placeholder` marks rows recorded only from a link."""
    return [
        Column("source", String(500), nullable=False),
        Column("first_loaded_at", UTCDateTime, nullable=False),
        Column("last_loaded_at", UTCDateTime, nullable=False),
        # the etl_runs.id of the run that last changed the row; not a declared foreign key: a
        # per-row check against etl_runs on every insert would cost more than it protects
        Column("run_id", Integer, nullable=False),
    ]


etl_runs = Table(
    "etl_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(500), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("status", String(20), nullable=False),  # running | succeeded | failed
    Column("mode", String(20), nullable=False),  # full | incremental | since | repair
    Column("rows_inserted", Integer, nullable=False, default=0),
    Column("rows_updated", Integer, nullable=False, default=0),
    Column("counts", Text),  # JSON: {table: {"inserted": n, "updated": n}}
    Column("parents_from_links", Integer, nullable=False, default=0),
    Column("requests", Integer, nullable=False, default=0),
    Column("retries", Integer, nullable=False, default=0),
    Column("quarantined", Integer, nullable=False, default=0),
    Column("foreign_links", Integer, nullable=False, default=0),
    Column("new_values", Integer, nullable=False, default=0),  # enum values EM documents nowhere
    Column("sweep_requests", Integer, nullable=False, default=0),  # of requests: the retention sweep's
    # JSON [{"type": query type, "role": EM role that reads it}]: types EM refused (403); NULL: none
    Column("refused", Text),
    # the completeness check (etl.verify), NULL in a run that made none: counts compared, buckets
    # that differed, rows written reloading them, requests it took (of `requests`)
    Column("verify_compared", Integer),
    Column("verify_differing", Integer),
    Column("verify_reloaded", Integer),
    Column("verify_requests", Integer),
    Column("error", Text),
    Column("host", String(255)),
    Column("pid", Integer),
)
Index(None, etl_runs.c.source, etl_runs.c.started_at)

backup_servers = Table(
    "backup_servers",
    metadata,
    _uid(),
    Column("href", Text),
    Column("name", String(500)),
    Column("description", Text),
    Column("port", Integer),
    Column("version", String(100)),
    Column("wcf_port", Integer),
    Column("vbr_certificate_thumbprint", String(200)),
    Column("placeholder", Boolean, nullable=False, default=False),
    *_load_metadata(),
)

jobs = Table(
    "jobs",
    metadata,
    _uid(),
    Column("href", Text),
    _server(),
    Column("name", String(500)),
    Column("job_type", String(100)),
    Column("platform", String(100)),
    Column("description", Text),
    Column("schedule_configured", Boolean),
    Column("schedule_enabled", Boolean),
    Column("next_run_utc", UTCDateTime),
    _placeholder(),
    *_load_metadata(),
)

repositories = Table(
    "repositories",
    metadata,
    _uid(),
    Column("href", Text),
    _server(),
    Column("name", String(500)),
    Column("kind", String(100)),
    Column("capacity", BigInteger),  # bytes; NULL where EM reports -1 (unknown)
    Column("free_space", BigInteger),  # bytes; NULL where EM reports -1 (object storage)
    _placeholder(),
    *_load_metadata(),
)

repository_space = Table(
    "repository_space",
    metadata,
    Column("repository_uid", String(200), ForeignKey("repositories.uid"), primary_key=True),
    Column("run_id", Integer, primary_key=True),
    Column("source", String(500), nullable=False),
    Column("observed_at", UTCDateTime, nullable=False),
    Column("capacity", BigInteger),
    Column("free_space", BigInteger),
)

backups = Table(
    "backups",
    metadata,
    _uid(),
    Column("href", Text),
    _server(),
    Column("repository_uid", String(200), ForeignKey("repositories.uid")),
    Column("parent_backup_uid", String(200), ForeignKey("backups.uid")),
    *_job_by_filter(),
    Column("name", String(500)),
    Column("platform", String(100)),
    Column("backup_type", String(100)),
    _placeholder(),
    _deleted_at(),
    *_load_metadata(),
)

replicas = Table(
    "replicas",
    metadata,
    _uid(),
    Column("href", Text),
    _server(),
    Column("repository_uid", String(200), ForeignKey("repositories.uid")),
    *_job_by_filter(),
    Column("name", String(500)),
    Column("platform", String(100)),
    _placeholder(),
    _deleted_at(),
    *_load_metadata(),
)

replica_job_sessions = Table(
    "replica_job_sessions",
    metadata,
    _uid(),
    Column("href", Text),
    Column("backup_server_uid", String(200), ForeignKey("backup_servers.uid")),
    Column("job_uid", String(200), ForeignKey("jobs.uid")),
    Column("job_name", String(500)),
    Column("job_type", String(100)),
    Column("name", String(500)),
    Column("creation_time_utc", UTCDateTime),
    Column("end_time_utc", UTCDateTime),
    Column("state", String(50)),
    Column("result", String(50)),
    Column("progress", Integer),
    Column("is_retry", Boolean),
    Column("failure_message", Text),
    Column("placeholder", Boolean, nullable=False, default=False),
    *_load_metadata(),
)
# Indexes serve the reporting views and the incremental queries; every extra index slows the load.
Index(None, replica_job_sessions.c.creation_time_utc)
Index(None, replica_job_sessions.c.job_uid, replica_job_sessions.c.creation_time_utc)

vm_replica_points = Table(
    "vm_replica_points",
    metadata,
    _uid(),
    Column("href", Text),
    Column("backup_server_uid", String(200), ForeignKey("backup_servers.uid")),
    Column("replica_uid", String(200), ForeignKey("replicas.uid")),
    Column("name", String(500)),
    Column("vm_display_name", String(500)),
    Column("vm_name", String(500)),
    Column("creation_time_utc", UTCDateTime),
    Column("algorithm", String(50)),
    Column("point_type", String(50)),
    Column("placeholder", Boolean, nullable=False, default=False),
    _deleted_at(),
    *_load_metadata(),
)
Index(None, vm_replica_points.c.creation_time_utc)
Index(None, vm_replica_points.c.vm_display_name, vm_replica_points.c.creation_time_utc)

replica_task_sessions = Table(
    "replica_task_sessions",
    metadata,
    _uid(),
    Column("href", Text),
    Column("job_session_uid", String(200), ForeignKey("replica_job_sessions.uid"), nullable=False),
    Column("backup_server_uid", String(200), ForeignKey("backup_servers.uid")),
    Column("replica_point_uid", String(200), ForeignKey("vm_replica_points.uid")),
    Column("name", String(500)),
    Column("vm_display_name", String(500)),
    Column("creation_time_utc", UTCDateTime),
    Column("end_time_utc", UTCDateTime),
    Column("state", String(50)),
    Column("result", String(50)),
    Column("reason", Text),
    Column("total_size", BigInteger),
    *_load_metadata(),
)
Index(None, replica_task_sessions.c.job_session_uid)
Index(None, replica_task_sessions.c.vm_display_name, replica_task_sessions.c.creation_time_utc)
Index(None, replica_task_sessions.c.creation_time_utc)

backup_job_sessions = Table(
    "backup_job_sessions",
    metadata,
    _uid(),
    Column("href", Text),
    _server(),
    Column("job_uid", String(200), ForeignKey("jobs.uid")),
    # AgentManagement (per-computer) sessions: their AgentBackup parent session; NULL otherwise
    Column("parent_session_uid", String(200), ForeignKey("backup_job_sessions.uid")),
    Column("job_name", String(500)),
    Column("job_type", String(100)),
    Column("name", String(500)),
    Column("creation_time_utc", UTCDateTime),
    Column("end_time_utc", UTCDateTime),
    Column("state", String(50)),
    Column("result", String(50)),
    Column("progress", Integer),
    Column("is_retry", Boolean),
    Column("failure_message", Text),
    _placeholder(),
    *_load_metadata(),
)
Index(None, backup_job_sessions.c.creation_time_utc)
Index(None, backup_job_sessions.c.job_uid, backup_job_sessions.c.creation_time_utc)
Index(None, backup_job_sessions.c.parent_session_uid)  # agent per-computer sessions under their parent

restore_points = Table(
    "restore_points",
    metadata,
    _uid(),
    Column("href", Text),
    Column("backup_uid", String(200), ForeignKey("backups.uid")),
    _server(),
    Column("name", String(500)),
    Column("backup_date_utc", UTCDateTime),
    _placeholder(),
    _deleted_at(),
    *_load_metadata(),
)
Index(None, restore_points.c.backup_uid)

backup_files = Table(
    "backup_files",
    metadata,
    _uid(),
    Column("href", Text),
    Column("backup_uid", String(200), ForeignKey("backups.uid")),
    _server(),
    Column("name", String(500)),
    Column("file_path", Text),
    Column("file_type", String(50)),
    Column("backup_size", BigInteger),  # bytes on disk
    Column("data_size", BigInteger),  # bytes read from the source, before data reduction
    Column("deduplication_ratio", Float),
    Column("compress_ratio", Float),
    Column("creation_time_utc", UTCDateTime),
    _placeholder(),
    _deleted_at(),
    *_load_metadata(),
)
Index(None, backup_files.c.backup_uid)
Index(None, backup_files.c.creation_time_utc)

vm_restore_points = Table(
    "vm_restore_points",
    metadata,
    _uid(),
    Column("href", Text),
    Column("restore_point_uid", String(200), ForeignKey("restore_points.uid")),
    Column("backup_file_uid", String(200), ForeignKey("backup_files.uid")),
    _server(),
    Column("name", String(500)),
    Column("vm_display_name", String(500)),
    Column("vm_name", String(500)),
    Column("hierarchy_obj_ref", String(500)),
    Column("creation_time_utc", UTCDateTime),
    Column("algorithm", String(50)),
    Column("point_type", String(50)),
    _placeholder(),
    _deleted_at(),
    *_load_metadata(),
)
Index(None, vm_restore_points.c.hierarchy_obj_ref, vm_restore_points.c.creation_time_utc)
Index(None, vm_restore_points.c.restore_point_uid)
# tasks of older servers (no VmUid) find their point by name within their window (etl.reconcile)
Index(None, vm_restore_points.c.backup_server_uid, vm_restore_points.c.creation_time_utc)

# An agent computer's restore point (em-backup-side.md §10): EM keeps it apart from VM restore points.
agent_restore_points = Table(
    "agent_restore_points",
    metadata,
    _uid(),
    Column("href", Text),
    Column("restore_point_uid", String(200), ForeignKey("restore_points.uid")),
    Column("backup_file_uid", String(200), ForeignKey("backup_files.uid")),
    _server(),
    Column("name", String(500)),
    Column("computer_name", String(500)),  # the entity's Name up to its last `@`
    Column("creation_time_utc", UTCDateTime),
    Column("algorithm", String(50)),
    Column("point_type", String(50)),
    _placeholder(),
    _deleted_at(),
    *_load_metadata(),
)
# a computer's newest point on its backup server (v_vm_backup_status); named: the generated name
# would pass PostgreSQL's 63 characters
Index(
    "ix_agent_restore_points_server_computer_time",
    agent_restore_points.c.backup_server_uid,
    agent_restore_points.c.computer_name,
    agent_restore_points.c.creation_time_utc,
)
Index(None, agent_restore_points.c.restore_point_uid)

backup_task_sessions = Table(
    "backup_task_sessions",
    metadata,
    _uid(),
    Column("href", Text),
    Column("job_session_uid", String(200), ForeignKey("backup_job_sessions.uid"), nullable=False),
    _server(),
    Column("vm_restore_point_uid", String(200), ForeignKey("vm_restore_points.uid"), info=KEPT),
    # where vm_restore_point_uid came from: 'link' (EM's Related link) or 'inferred' (see docs)
    Column("vm_restore_point_link", String(20), info=KEPT),
    Column("name", String(500)),
    Column("vm_display_name", String(500)),
    Column("vm_uid", String(500)),  # the VM's hierarchy reference (= vm_restore_points.hierarchy_obj_ref)
    Column("creation_time_utc", UTCDateTime),
    Column("end_time_utc", UTCDateTime),
    Column("state", String(50)),
    Column("result", String(50)),
    Column("reason", Text),
    Column("total_size", BigInteger),  # bytes: the VM's source size, not bytes transferred
    *_load_metadata(),
)
Index(None, backup_task_sessions.c.job_session_uid)
Index(None, backup_task_sessions.c.creation_time_utc)
Index(None, backup_task_sessions.c.vm_uid, backup_task_sessions.c.creation_time_utc)

etl_watermarks = Table(
    "etl_watermarks",
    metadata,
    Column("source", String(500), primary_key=True),
    Column("entity_type", String(100), primary_key=True),
    # windows are kept per backup server: EM collects each one on its own schedule (em-api.md)
    Column("backup_server_uid", String(200), primary_key=True),
    Column("watermark_utc", UTCDateTime, nullable=False),
    Column("run_id", Integer, ForeignKey("etl_runs.id"), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

etl_sweeps = Table(
    "etl_sweeps",
    metadata,
    Column("source", String(500), primary_key=True),
    Column("swept_at", UTCDateTime, nullable=False),  # the last retention sweep (etl.reconcile)
    Column("run_id", Integer, nullable=False),
)

etl_locks = Table(
    "etl_locks",
    metadata,
    Column("source", String(500), primary_key=True),
    Column("run_id", Integer),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)

etl_quarantine = Table(
    "etl_quarantine",
    metadata,
    Column("source", String(500), primary_key=True),
    Column("href", String(2000), primary_key=True),
    Column("entity_type", String(100), nullable=False),
    Column("uid", String(200)),
    Column("error", Text, nullable=False),
    Column("excerpt", Text),
    Column("run_id", Integer, ForeignKey("etl_runs.id"), nullable=False),
    Column("quarantined_at", UTCDateTime, nullable=False),
)

# Enum values EM sent that its documentation does not list: warned about once per warehouse, when first
# seen (em-api.md, "Values are open sets"), and listed by `veeam-etl status`.
etl_undocumented_values = Table(
    "etl_undocumented_values",
    metadata,
    Column("entity_type", String(100), primary_key=True),
    Column("column_name", String(100), primary_key=True),
    Column("value", String(500), primary_key=True),
    Column("source", String(500), nullable=False),  # the EM that sent it first
    Column("run_id", Integer, ForeignKey("etl_runs.id"), nullable=False),  # the run that first saw it
    Column("first_seen_at", UTCDateTime, nullable=False),
)

etl_settings = Table(
    "etl_settings",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

IN_LIST = 500  # values per IN (...) list: well under SQLite's and PostgreSQL's parameter limits

# Load metadata columns of every entity table (etl.registry lists the entity tables).
META_COLUMNS = frozenset({"source", "first_loaded_at", "last_loaded_at", "run_id"})


def table(name: str) -> Table:
    """The table named `name`. Raises KeyError."""
    return metadata.tables[name]
