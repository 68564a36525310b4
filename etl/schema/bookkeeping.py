"""The loader's own tables (etl_*), none of them EM's data: its runs, the watermarks where incremental
loads resume, the retention sweeps, the one-run-at-a-time locks, the quarantine of what could not be read,
the undocumented values met, and the settings the reporting views read."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text

from .columns import UTCDateTime, metadata

etl_runs = Table(
    "etl_runs",
    metadata,
    Column(
        "id",
        Integer,
        primary_key=True,
        autoincrement=True,
        comment="Run number: the `run_id` of what it wrote.",
    ),
    Column(
        "source",
        String(500),
        nullable=False,
        comment="The Enterprise Manager loaded (as the entity tables' `source` name it).",
    ),
    Column("started_at", UTCDateTime, nullable=False, comment="When the run started (UTC)."),
    Column(
        "finished_at",
        UTCDateTime,
        comment="When the run ended (UTC); NULL while it runs, or when it was killed before it could say.",
    ),
    Column("status", String(20), nullable=False, comment="`running`, `succeeded` or `failed`."),
    Column(
        "mode",
        String(20),
        nullable=False,
        comment="`full`, `incremental`, `since` or `repair` (`veeam-etl verify --repair`: sweep, check, reload).",
    ),
    Column("rows_inserted", Integer, nullable=False, default=0, comment="Entity rows the run inserted."),
    Column(
        "rows_updated",
        Integer,
        nullable=False,
        default=0,
        comment="Entity rows the run updated (a value changed).",
    ),
    Column("counts", Text, comment='Rows per table, JSON `{table: {"inserted": n, "updated": n}}`.'),
    Column(
        "parents_from_links",
        Integer,
        nullable=False,
        default=0,
        comment="Parents EM would not give, recorded from their links (placeholder rows).",
    ),
    Column("requests", Integer, nullable=False, default=0, comment="HTTP requests made to EM."),
    Column("retries", Integer, nullable=False, default=0, comment="HTTP requests retried."),
    Column(
        "quarantined",
        Integer,
        nullable=False,
        default=0,
        comment="Entities the run could not read and quarantined (`etl_quarantine`).",
    ),
    Column(
        "foreign_links",
        Integer,
        nullable=False,
        default=0,
        comment="Links to other origins that were refused (never requested: the token never leaves).",
    ),
    Column(
        "new_values",
        Integer,
        nullable=False,
        default=0,
        comment="Enumeration values (State, Result, JobType, ...) EM sent that its documentation does not "
        "list and that no earlier run had met: stored as sent, warned about once per warehouse "
        "(`etl_undocumented_values`).",
    ),
    Column(
        "sweep_requests",
        Integer,
        nullable=False,
        default=0,
        comment="Of `requests`: those of the retention sweep (EM's uid lists and the lookups by UID of what "
        "they lack).",
    ),
    Column(
        "refused",
        Text,
        comment='JSON `[{"type": t, "role": r}]`: query types EM refused to the account (HTTP 403), skipped '
        "by the run, each with the EM role that reads it; NULL when EM refused nothing.",
    ),
    # the completeness check (etl.completeness), NULL in a run that made none
    Column(
        "verify_compared",
        Integer,
        comment="Counts the completeness check compared (EM's against the warehouse's: per type, then "
        "backup server, then day or backup where totals differ); NULL when the run made no check "
        "(docs/completeness.md).",
    ),
    Column(
        "verify_differing",
        Integer,
        comment="Buckets (type, backup server, day; or backups) whose counts differed and that the run "
        "read again; NULL when the run made no check.",
    ),
    Column(
        "verify_reloaded",
        Integer,
        comment="Rows the completeness check wrote while reading the differing buckets again; NULL when "
        "the run made no check.",
    ),
    Column(
        "verify_requests",
        Integer,
        comment="Of `requests`: those of the completeness check (counts and reloads); NULL when the run "
        "made no check.",
    ),
    Column("error", Text, comment="Why the run failed (secrets masked); NULL when it did not."),
    Column("host", String(255), comment="Host name of the machine the run ran on."),
    Column("pid", Integer, comment="Process id of the run."),
    comment="One row per run of the loader (`veeam-etl run`, `verify --repair`, `demo`): outcome, counts "
    "and errors. Written by the loader.",
)
Index(None, etl_runs.c.source, etl_runs.c.started_at)

etl_watermarks = Table(
    "etl_watermarks",
    metadata,
    Column("source", String(500), primary_key=True, comment="The Enterprise Manager."),
    Column(
        "entity_type",
        String(100),
        primary_key=True,
        comment="EM type the watermark is for, e.g. `ReplicaJobSession`.",
    ),
    Column(
        "backup_server_uid",
        String(200),
        primary_key=True,
        comment="The backup server the window is for: EM collects each server on its own schedule, so each "
        'keeps its own watermark (em-api.md, "Collection lag per backup server").',
    ),
    Column(
        "watermark_utc",
        UTCDateTime,
        nullable=False,
        comment="Newest creation time committed for that type and server (UTC).",
    ),
    Column("run_id", Integer, ForeignKey("etl_runs.id"), nullable=False, comment="The run that set it."),
    Column("updated_at", UTCDateTime, nullable=False, comment="When it was set (UTC)."),
    comment="Per source, EM type and backup server: the newest creation time committed, where the next "
    "incremental load resumes (less `--lookback`).",
)

etl_sweeps = Table(
    "etl_sweeps",
    metadata,
    Column("source", String(500), primary_key=True, comment="The Enterprise Manager."),
    Column(
        "swept_at",
        UTCDateTime,
        nullable=False,
        comment="When its retention sweep last ran (UTC); the next is due `--sweep-hours` later.",
    ),
    Column("run_id", Integer, nullable=False, comment="The run that swept."),
    comment="Per source: when the retention sweep last compared the warehouse with EM's uid lists.",
)

etl_locks = Table(
    "etl_locks",
    metadata,
    Column("source", String(500), primary_key=True, comment="The Enterprise Manager locked."),
    Column("run_id", Integer, comment="The run holding the lock."),
    Column("host", String(255), nullable=False, comment="Host name of the run holding the lock."),
    Column("pid", Integer, nullable=False, comment="Process id of the run holding the lock."),
    Column("acquired_at", UTCDateTime, nullable=False, comment="When the lock was taken (UTC)."),
    Column(
        "heartbeat_at",
        UTCDateTime,
        nullable=False,
        comment="The holder's last sign of life (UTC); a stale heartbeat lets the next run take over.",
    ),
    comment="The one-run-at-a-time lock per source, with a heartbeat.",
)

etl_quarantine = Table(
    "etl_quarantine",
    metadata,
    Column("source", String(500), primary_key=True, comment="The Enterprise Manager."),
    Column("href", String(2000), primary_key=True, comment="URL of the unreadable entity."),
    Column("entity_type", String(100), nullable=False, comment="EM type of the entity."),
    Column("uid", String(200), comment="Its UID, when that could be read."),
    Column("error", Text, nullable=False, comment="Why it could not be read."),
    Column("excerpt", Text, comment="The start of the offending XML (1000 characters)."),
    Column(
        "run_id", Integer, ForeignKey("etl_runs.id"), nullable=False, comment="The run that quarantined it."
    ),
    Column("quarantined_at", UTCDateTime, nullable=False, comment="When (UTC)."),
    comment="Entities EM sent that could not be read: kept for inspection, asked for again by later runs.",
)

# Enum values EM sent that its documentation does not list: warned about once per warehouse, when first
# seen (em-api.md, "Values are open sets"), and listed by `veeam-etl status`.
etl_undocumented_values = Table(
    "etl_undocumented_values",
    metadata,
    Column(
        "entity_type",
        String(100),
        primary_key=True,
        comment="EM type that carried the value, e.g. `BackupJobSession`.",
    ),
    Column("column_name", String(100), primary_key=True, comment="The column it is stored in, e.g. `state`."),
    Column("value", String(500), primary_key=True, comment="The value as EM sent it."),
    Column("source", String(500), nullable=False, comment="The Enterprise Manager that sent it first."),
    Column(
        "run_id",
        Integer,
        ForeignKey("etl_runs.id"),
        nullable=False,
        comment="The run that first met it (it counts in that run's `new_values`).",
    ),
    Column("first_seen_at", UTCDateTime, nullable=False, comment="When it was first met (UTC)."),
    comment="Enumeration values EM sent that its documentation does not list (a `State`, `Kind`, `JobType`, "
    "... newer than this tool), one row per type, column and value: recorded when first seen, so each is "
    "warned about once per warehouse; listed by `veeam-etl status`. The value is stored as sent in its table.",
)

etl_settings = Table(
    "etl_settings",
    metadata,
    Column("key", String(100), primary_key=True, comment="Setting name, e.g. `rpo_hours`."),
    Column("value", Text, nullable=False, comment="Setting value, as text."),
    comment="Settings the reporting views read: `rpo_hours` (replication RPO, default 24, inserted by the "
    "first migration), `backup_rpo_hours` (backup RPO) and `repository_low_free_pct` (low free space "
    "threshold); a key that is absent reads as its default (24 and 10).",
)
