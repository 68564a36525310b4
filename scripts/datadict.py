"""Generate docs/warehouse.md, the warehouse data dictionary, from etl.schema and the views in sql/.

    python scripts/datadict.py > docs/warehouse.md

Column meanings live in the dicts below; tests/unit/test_docs.py fails when the committed file differs from
what this prints, or when a table or view column has no meaning here.
"""

from __future__ import annotations

import re
import sys
import tempfile
from importlib import resources
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from etl import db, registry, report, schema, views  # noqa: E402

MISSING = "(no description yet: add one to scripts/datadict.py)"

TABLES = {
    "etl_runs": "One row per load (`veeam-etl run` / `demo`): outcome, counts and errors.",
    "backup_servers": "Veeam Backup & Replication servers that EM manages (`BackupServer`).",
    "replica_job_sessions": "One run of a replication job (`ReplicaJobSession`), scheduled or an automatic retry.",
    "vm_replica_points": "Restore points of VM replicas (`VmReplicaPoint`).",
    "replica_task_sessions": "One VM processed in one replication job session (`ReplicaTaskSession`).",
    "etl_watermarks": "Per source and entity type: the newest creation time committed, where incremental loads resume.",
    "etl_locks": "The one-run-at-a-time lock per source, with a heartbeat.",
    "etl_quarantine": "Entities EM returned that could not be read; kept for inspection, retried by later runs.",
    "etl_settings": "Key/value settings read by the reporting views (`rpo_hours`, default 24).",
}

COMMON = {
    "uid": "EM UID, `urn:veeam:<Type>:<guid>`: the key.",
    "href": "EM URL of the entity, as EM gave it.",
    "placeholder": "True when the row was recorded only from a link (EM could not return the entity): "
    "only uid, href and name are known.",
    "source": "The Enterprise Manager the row came from (its API URL, or `--source-name`).",
    "first_loaded_at": "When a load first inserted the row (UTC).",
    "last_loaded_at": "When a load last wrote the row (UTC).",
    "run_id": "The `etl_runs` row of the load that last wrote the row.",
}

COLUMNS = {
    "etl_runs": {
        "id": "Run number.",
        "source": "The Enterprise Manager loaded.",
        "started_at": "When the run started (UTC).",
        "finished_at": "When the run ended (UTC); NULL while running or when killed.",
        "status": "`running`, `succeeded` or `failed`.",
        "mode": "`full`, `incremental` or `since`.",
        "rows_inserted": "Entity rows inserted by the run.",
        "rows_updated": "Entity rows updated by the run.",
        "counts": 'JSON `{table: {"inserted": n, "updated": n}}`.',
        "parents_from_links": "Parents EM could not return, recorded from their links (placeholder rows).",
        "requests": "HTTP requests made to EM.",
        "retries": "HTTP requests retried.",
        "quarantined": "Entities quarantined by the run.",
        "foreign_links": "Links to other origins that were refused.",
        "error": "Why the run failed.",
        "host": "Host the run ran on.",
        "pid": "Process id of the run.",
    },
    "backup_servers": {
        "name": "DNS name or IP of the backup server.",
        "description": "Description entered in Veeam (may be NULL).",
        "port": "Veeam Backup Service port (9392).",
        "version": "Veeam Backup & Replication version, e.g. 12.1.2.172.",
        "wcf_port": "WCF port, when EM reports it.",
        "vbr_certificate_thumbprint": "Thumbprint of the backup server's certificate, when EM reports it.",
    },
    "replica_job_sessions": {
        "backup_server_uid": "Backup server that ran the job.",
        "job_uid": "The replication job (`urn:veeam:Job:<guid>`).",
        "job_name": "The job's name at the time of the session.",
        "job_type": "`Replica`.",
        "name": "`<job>@<start time>` as EM names the session.",
        "creation_time_utc": "When the session started.",
        "end_time_utc": "When the session ended; NULL while running.",
        "state": "`Starting`, `Working`, `Stopping`, `Pausing`, `Resuming` or `Stopped` (finished).",
        "result": "`Success`, `Warning`, `Failed`, or `None` while running.",
        "progress": "Percent done, 0-100.",
        "is_retry": "True for an automatic retry of a failed run.",
        "failure_message": "EM's summary of what went wrong, when anything did.",
    },
    "vm_replica_points": {
        "backup_server_uid": "Backup server holding the replica.",
        "replica_uid": "The replica (`urn:veeam:Replica:<guid>`).",
        "name": "`<vm>@<time>` as EM names the point.",
        "vm_display_name": "Name of the VM as shown in Veeam.",
        "vm_name": "VM name (newer servers only).",
        "creation_time_utc": "When the point was created.",
        "algorithm": "`Full`, `Incremental`, `ReversedIncremental` or `SyntheticFull`.",
        "point_type": "`Full`, `Increment`, `ReverseIncrement` or `Snapshot`.",
    },
    "replica_task_sessions": {
        "job_session_uid": "The job session the task belongs to.",
        "backup_server_uid": "Backup server that ran it.",
        "replica_point_uid": "Replica point the task created (NULL when none or not linked).",
        "name": "`<vm>@<start time>` as EM names the task.",
        "vm_display_name": "Name of the VM as shown in Veeam.",
        "creation_time_utc": "When the task started.",
        "end_time_utc": "When the task ended; NULL while pending or in progress.",
        "state": "`Pending`, `InProgress` or `Completed`.",
        "result": "`Success`, `Warning`, `Failed`, or `None` while running.",
        "reason": "Why the task warned or failed (NULL when fine).",
        "total_size": "Bytes EM reports for the task (TotalSize).",
    },
    "etl_watermarks": {
        "source": "The Enterprise Manager.",
        "entity_type": "EM type the watermark is for, e.g. `ReplicaJobSession`.",
        "watermark_utc": "Newest creation time committed for that type.",
        "run_id": "Run that set it.",
        "updated_at": "When it was set (UTC).",
    },
    "etl_locks": {
        "source": "The Enterprise Manager locked.",
        "run_id": "Run holding the lock.",
        "host": "Host of the run holding the lock.",
        "pid": "Process id of the run holding the lock.",
        "acquired_at": "When the lock was taken (UTC).",
        "heartbeat_at": "Last sign of life of the holder (UTC); a stale heartbeat lets the next run take over.",
    },
    "etl_quarantine": {
        "source": "The Enterprise Manager.",
        "href": "URL of the unreadable entity.",
        "entity_type": "EM type of the entity.",
        "uid": "Its UID when readable.",
        "error": "Why it could not be read.",
        "excerpt": "The start of the offending XML.",
        "run_id": "Run that quarantined it.",
        "quarantined_at": "When (UTC).",
    },
    "etl_settings": {
        "key": "Setting name, e.g. `rpo_hours`.",
        "value": "Setting value as text.",
    },
}

VIEW_COMMON = {
    "job_uid": "The replication job.",
    "job_name": "The job's name (in v_replica_job_daily: its newest name).",
    "backup_server_uid": "Backup server.",
    "backup_server_name": "Backup server's name.",
    "day_utc": "UTC calendar day (date on PostgreSQL, `YYYY-MM-DD` text on SQLite).",
    "vm_display_name": "VM name as shown in Veeam.",
    "creation_time_utc": "Start of the session.",
    "end_time_utc": "End of the session; NULL while running.",
    "result": "`Success`, `Warning`, `Failed`, or `None` while running.",
    "state": "EM state of the session.",
    "is_retry": "1 for an automatic retry session, else 0.",
    "tasks": "Task sessions counted.",
    "tasks_success": "Tasks that ended Success.",
    "tasks_warning": "Tasks that ended Warning.",
    "tasks_failed": "Tasks that ended Failed.",
    "rpo_hours": "The RPO in hours (`etl_settings` key `rpo_hours`, default 24).",
}

VIEW_COLUMNS = {
    "v_replica_job_runs": {
        "session_uid": "The job session.",
        "session_name": "`<job>@<start time>`.",
        "duration_s": "End minus start in seconds (ms precision); NULL while running or if the end precedes the "
        "start. Never negative.",
        "failure_message": "EM's summary of what went wrong.",
        "tasks_running": "Tasks not finished yet.",
        "total_bytes": "Sum of the tasks' total_size.",
        "day_utc": "UTC day the session started.",
    },
    "v_replica_job_daily": {
        "day_utc": "UTC day the run group's first session started.",
        "runs": "Run groups (a scheduled run plus its automatic retries counts once).",
        "sessions": "Job sessions in those groups, retries included.",
        "retries": "Retry sessions in those groups.",
        "successes": "Groups whose final outcome is Success (recovered ones included).",
        "warnings": "Groups whose final outcome is Warning.",
        "failures": "Groups whose final outcome is Failed (the retries did not help).",
        "recovered": "Groups whose first session Failed and whose final outcome is Success or Warning.",
        "running": "Groups whose latest session is still running.",
        "final_result": "Final outcome of the day's latest run group (`None` while it runs).",
        "success_rate": "(successes + warnings) / finished groups, 0..1; NULL when none finished.",
    },
    "v_vm_replica_status": {
        "tasks": "Task sessions of the VM in the warehouse.",
        "last_task_start_utc": "Start of the VM's newest task.",
        "last_task_state": "State of the newest task.",
        "last_task_result": "Result of the newest task (`None` while it runs).",
        "last_result": "Result of the newest finished task.",
        "last_result_utc": "End of the newest finished task.",
        "last_success_utc": "End of the newest task that ended Success or Warning; NULL if none.",
        "replica_points": "Replica points of the VM (placeholders left out).",
        "newest_point_utc": "Creation time of the newest replica point.",
        "hours_since_success": "Hours from last_success_utc to the database's current time; NULL if never.",
        "rpo_breach": "1 when there is no success within the RPO (or none at all), else 0.",
        "rpo_status": "`red` (breach), `amber` (last success older than half the RPO, or last result Warning "
        "or Failed) or `green`.",
    },
    "v_replica_transfer_daily": {
        "day_utc": "UTC day the tasks ended.",
        "tasks": "Finished tasks that ended that day.",
        "bytes": "Sum of their total_size.",
        "bytes_ok": "Sum of total_size of those that ended Success or Warning.",
    },
    "v_replica_failures": {
        "task_uid": "The task session.",
        "occurred_utc": "End of the task (its start if it has none): the sort key.",
        "creation_time_utc": "Start of the task.",
        "end_time_utc": "End of the task.",
        "result": "`Failed` or `Warning`.",
        "reason": "Why, as EM reports it.",
        "job_session_uid": "The job session.",
        "session_name": "`<job>@<start time>` of the job session.",
        "is_retry": "1 when the task ran in an automatic retry session.",
        "later_success": "1 when a later task of the same VM on the same server ended Success or Warning.",
    },
}

DEFINITIONS = """\
## Definitions

- **Instants** are UTC: `timestamptz` on PostgreSQL; on SQLite text `YYYY-MM-DD HH:MM:SS.ffffff` in UTC.
  Days (`day_utc`) are UTC calendar days.
- **Flags** in views (`is_retry`, `rpo_breach`, `later_success`) are integers 0/1 on both databases: sum
  them to count.
- **Running**: a job session with state `Working` (or any not `Stopped`) has result `None` and no
  `end_time_utc`; a task that is `Pending` or `InProgress` likewise. Running rows get no duration and no
  final outcome; they are counted as `running`.
- **Placeholders** (`placeholder` true: recorded only from a link) are left out of the views where they
  would distort figures: placeholder job sessions have no times, so they are not runs; placeholder
  replica points are not points. Tasks under a placeholder session still count for their VM, for
  transfer and in failures.
- **Retries folded in** (`v_replica_job_daily`): per job, sessions are ordered by start time. A *run
  group* is a scheduled (non-retry) session together with the automatic retry sessions (`is_retry`) of
  the same job that start after it and before the job's next non-retry session. Retries with no earlier
  non-retry session in the warehouse form a group of their own. The group belongs to the UTC day its
  first session started (a retry after midnight stays with its run); its final outcome is the result of
  its latest session. So a failed run followed by a successful retry counts once, as a success, and as
  `recovered`. `success_rate` = (successes + warnings) / (successes + warnings + failures) of the day's
  groups; running groups are left out of the rate.
- **"Now"** (`v_vm_replica_status.hours_since_success`, `rpo_breach`, `rpo_status`) is the database's
  current time when the query runs: `CURRENT_TIMESTAMP` (PostgreSQL: the start of the transaction;
  SQLite: `'now'` of the statement). No time is stored in the view. The HTML and table reports use the
  same clock (`SELECT now_utc FROM v__clock`).
- **RPO** is `etl_settings` row `rpo_hours` (default `24`, inserted by the first migration): change it
  with `UPDATE etl_settings SET value = '12' WHERE key = 'rpo_hours'`. A VM breaches (`rpo_breach` = 1,
  `rpo_status` red) when its newest Success/Warning task ended more than `rpo_hours` ago, or never.
  Amber: not in breach, but the last success is older than half the RPO, or the newest finished task
  ended Warning or Failed. Green otherwise.
- **Transfer** (`v_replica_transfer_daily`) counts finished tasks on the UTC day they ended; bytes are
  EM's `TotalSize` per task. GB in reports are 2^30 bytes.
- **Order**: views keep no order; use the `ORDER BY` given under each view.
"""


def _type(col) -> str:
    if isinstance(col.type, schema.UTCDateTime):
        return "timestamptz (SQLite: UTC text)"
    pg = col.type.compile(dialect=postgresql.dialect()).lower()
    lite = col.type.compile(dialect=sqlite.dialect()).lower()
    return pg if pg == lite or col.type.__class__.__name__ != "Boolean" else f"{pg} (SQLite: 0/1)"


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def meaning(table: str, column: str) -> str:
    return COLUMNS.get(table, {}).get(column) or COMMON.get(column) or MISSING


def view_meaning(view: str, column: str) -> str:
    return VIEW_COLUMNS.get(view, {}).get(column) or VIEW_COMMON.get(column) or MISSING


def view_columns() -> dict[str, list[str]]:
    """{view: columns} from a scratch SQLite warehouse migrated to head (public views only)."""
    with tempfile.TemporaryDirectory() as tmp:
        eng = db.engine(f"sqlite:///{Path(tmp) / 'dict.db'}")
        try:
            db.migrate(eng)
            with eng.connect() as conn:
                return {
                    name: list(conn.execute(text(f"SELECT * FROM {name} WHERE 1 = 0")).keys())
                    for name in views.names("sqlite")
                    if not name.startswith("v__")
                }
        finally:
            eng.dispose()


def _view_summary(name: str) -> str:
    """The leading `--` comment of the view's portable file (or its PostgreSQL variant)."""
    files = {f.name: f for f in resources.files("etl.sql").iterdir()}
    f = files.get(f"{name}.sql") or files.get(f"{name}.postgresql.sql")
    if f is None:
        return ""
    lines = []
    for line in f.read_text(encoding="utf-8").splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    return " ".join(lines)


def _fks(table) -> dict[str, str]:
    return {
        c.name: f"{fk.column.table.name}.{fk.column.name}" for c in table.columns for fk in c.foreign_keys
    }


def render() -> str:
    out = [
        "# Warehouse data dictionary",
        "",
        "Generated from `etl/schema.py` and `sql/*.sql` by `python scripts/datadict.py > docs/warehouse.md`; "
        "do not edit by hand (`tests/unit/test_docs.py` fails when this file is out of date).",
        "",
        "Tables are managed by Alembic (`veeam-etl migrate`); views are dropped and re-created from `sql/` on "
        "every migrate. BI tools should read the `v_*` views. `v__*` views are helpers that hide "
        "SQLite/PostgreSQL differences (epoch seconds, UTC days, the current time): not a stable interface.",
        "",
        DEFINITIONS,
        "## Tables",
        "",
    ]
    entity = [t.name for t in registry.tables()]
    ordered = sorted(
        schema.metadata.tables.values(),
        key=lambda t: (0, entity.index(t.name)) if t.name in entity else (1, t.name),
    )
    for table in ordered:
        fks = _fks(table)
        out += [
            f"### {table.name}",
            "",
            TABLES.get(table.name, MISSING),
            "",
            "| column | type | null | key | meaning |",
            "|---|---|---|---|---|",
        ]
        for c in table.columns:
            key = "PK" if c.primary_key else f"FK → {fks[c.name]}" if c.name in fks else ""
            if c.primary_key and c.name in fks:
                key = f"PK, FK → {fks[c.name]}"
            out.append(
                f"| `{c.name}` | {_type(c)} | {'yes' if c.nullable else 'no'} | {key} | "
                f"{_cell(meaning(table.name, c.name))} |"
            )
        out.append("")  # indexes are left out: they change with tuning, not with meaning
    out += ["## Views", ""]
    for name, columns in view_columns().items():
        out += [f"### {name}", "", _view_summary(name), ""]
        if name in report.VIEWS:
            out += [f"Read with `SELECT * FROM {name} ORDER BY {report.VIEWS[name]}`.", ""]
        out += ["| column | meaning |", "|---|---|"]
        out += [f"| `{c}` | {_cell(view_meaning(name, c))} |" for c in columns]
        out.append("")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
