"""Generate docs/warehouse.md, the warehouse data dictionary, from etl/schema/ and the views in sql/.

    python scripts/datadict.py > docs/warehouse.md

Tables, columns, types, keys and meanings come from `etl.schema.metadata`: each table's and column's
`comment`, the same text PostgreSQL stores; "Derived values" lists the columns marked `schema.DERIVED`.
A view's summary is the leading comment of its file in sql/, its columns those of a scratch warehouse
migrated to head; a view column has no declaration to carry a comment, so its meaning is kept here
(`VIEW_COLUMNS`, `VIEW_COMMON`). tests/unit/test_docs.py fails when the committed file differs from what
this prints, or when a column has no meaning.
"""

from __future__ import annotations

import re
import sys
import tempfile
from importlib import resources
from pathlib import Path

from sqlalchemy import Column, Table, text
from sqlalchemy.dialects import postgresql, sqlite

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from etl import db, registry, report, schema, views  # noqa: E402

MISSING = "(no description yet: add one to scripts/datadict.py)"

# View columns whose values the views work out rather than read from a table, listed with the derived
# table columns.
DERIVED_VIEW_COLUMNS = (("v_vm_backup_status", "kind"), ("v_vm_backup_status", "keyed_by"))

VIEW_COMMON = {
    "job_uid": "The job (`urn:veeam:Job:<guid>`).",
    "job_name": "The job's name (in the daily and run views: its newest name).",
    "job_type": "The job's type as its sessions give it (`Backup`, `BackupCopy`, `AgentBackup`, ...).",
    "backup_server_uid": "Backup server.",
    "backup_server_name": "Backup server's name.",
    "day_utc": "UTC calendar day (date on PostgreSQL, `YYYY-MM-DD` text on SQLite).",
    "vm_display_name": "VM name as shown in Veeam.",
    "creation_time_utc": "Start of the session.",
    "end_time_utc": "End of the session; NULL while running.",
    "result": "As EM sent it (`Success`, `Warning`, `Failed`, `None`, or a value EM did not document); "
    "not an outcome before `state` says the session finished.",
    "state": "EM state of the session (`Stopped` / `Completed`: finished).",
    "is_retry": "1 for an automatic retry session, else 0.",
    "tasks": "Task sessions counted.",
    "tasks_success": "Tasks that ended Success.",
    "tasks_warning": "Tasks that ended Warning.",
    "tasks_failed": "Tasks that ended Failed.",
    "rpo_hours": "The RPO in hours (`etl_settings` key `rpo_hours`, default 24).",
    "tasks_other": "Finished tasks whose Result is none of Success/Warning/Failed (shown as EM sent it).",
    "other": "Runs that finished with a Result that is none of Success/Warning/Failed (a value EM did not "
    "document, or `None`): finished, never counted as a success.",
    "running": "Runs whose last session has not finished (State not Stopped), whatever its Result says.",
    "recovered": "Runs whose first session finished Failed and whose final outcome is Success or Warning.",
    "backup_uid": "The backup.",
    "backup_name": "The backup's name.",
    "repository_uid": "The repository.",
    "repository_name": "The repository's name.",
    "files": "Backup files EM still lists (`deleted_at` NULL).",
    "backup_bytes": "Bytes on disk: sum of the current files' `backup_size`.",
    "data_bytes": "Bytes read from the source: sum of the current files' `data_size`.",
    "reduction_ratio": "data_bytes / backup_bytes, 2 decimals (3.5 = stored in 1/3.5 of the source "
    "bytes); NULL when backup_bytes is 0.",
    "newest_file_utc": "Creation time of the newest current file.",
    "backups": "Backups EM still lists.",
    "vm_key": "The machine's key: a VM's hierarchy reference, else its name; an agent computer's name (see "
    "`keyed_by`).",
    "reason": "Why, as EM reports it.",
}

VIEW_COLUMNS = {
    "v_replica_job_runs": {
        "session_uid": "The job session.",
        "session_name": "`<job>@<start time>`.",
        "duration_s": "End minus start in seconds (ms precision); NULL until the session has finished (State "
        "Stopped) or if the end precedes the start. Never negative.",
        "failure_message": "EM's summary of what went wrong.",
        "tasks_success": "Finished tasks (State Completed) that ended Success.",
        "tasks_warning": "Finished tasks that ended Warning.",
        "tasks_failed": "Finished tasks that ended Failed.",
        "tasks_running": "Tasks not finished yet (State not Completed), whatever their Result says.",
        "total_bytes": "Sum of the tasks' total_size: the source size of the VMs processed, not bytes moved.",
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
        "recovered": "Groups whose first session finished Failed and whose final outcome is Success or "
        "Warning.",
        "running": "Groups whose latest session has not finished (State not Stopped), whatever its Result "
        "says.",
        "other": "Groups that finished with a Result that is none of Success/Warning/Failed: never counted "
        "as a success.",
        "final_result": "Result of the day's latest run group once it has finished (`None` while it runs).",
        "success_rate": "(successes + warnings) / finished groups (other included), 0..1; NULL when none "
        "finished.",
    },
    "v_vm_replica_status": {
        "tasks": "Task sessions of the VM in the warehouse.",
        "last_task_start_utc": "Start of the VM's newest task.",
        "last_task_state": "State of the newest task.",
        "last_task_result": "Result of the newest task (`None` while it runs).",
        "last_result": "Result of the newest finished task (State Completed).",
        "last_result_utc": "End of the newest finished task.",
        "last_success_utc": "End of the newest finished task that ended Success or Warning; NULL if none.",
        "replica_points": "Replica points of the VM that EM still lists (placeholders and `deleted_at` rows "
        "left out).",
        "newest_point_utc": "Creation time of the newest replica point.",
        "hours_since_success": "Hours from last_success_utc to the database's current time; NULL if never.",
        "rpo_breach": "1 when there is no success within the RPO (or none at all), else 0.",
        "rpo_status": "`red` (breach), `amber` (last success older than half the RPO, or last result anything "
        "but Success) or `green`.",
    },
    "v_replica_source_size_daily": {
        "day_utc": "UTC day the tasks finished.",
        "tasks": "Tasks that finished (State Completed) that day.",
        "tasks_success": "Of those, tasks that ended Success.",
        "tasks_warning": "Of those, tasks that ended Warning.",
        "tasks_failed": "Of those, tasks that ended Failed.",
        "source_bytes": "Sum of their total_size (EM's TotalSize): the size of the VMs processed, not bytes "
        "moved.",
        "source_bytes_ok": "The same for the tasks that ended Success or Warning.",
    },
    "v_replica_transfer_daily": {
        "day_utc": "UTC day the tasks finished.",
        "tasks": "Tasks that finished that day.",
        "tasks_success": "Of those, tasks that ended Success.",
        "tasks_warning": "Of those, tasks that ended Warning.",
        "tasks_failed": "Of those, tasks that ended Failed.",
        "bytes": "Deprecated name of `v_replica_source_size_daily.source_bytes`: the source size of the VMs "
        "processed, never bytes transferred.",
        "bytes_ok": "Deprecated name of `source_bytes_ok`.",
    },
    "v_replica_failures": {
        "task_uid": "The task session.",
        "occurred_utc": "End of the task (its start if it has none): the sort key.",
        "creation_time_utc": "Start of the task.",
        "end_time_utc": "End of the task.",
        "result": "`Failed` or `Warning` (of a finished task).",
        "reason": "Why, as EM reports it.",
        "job_session_uid": "The job session.",
        "session_name": "`<job>@<start time>` of the job session.",
        "is_retry": "1 when the task ran in an automatic retry session.",
        "later_success": "1 when a later finished task of the same VM on the same server ended Success or "
        "Warning.",
    },
    "v_backup_job_runs": {
        "run_uid": "The run: the uid of its first session (the scheduled one, or a retry whose scheduled "
        "session is older than the warehouse's history).",
        "day_utc": "UTC day the run started.",
        "start_utc": "Start of the run's first session.",
        "end_utc": "End of its last attempt; NULL until that attempt has finished (State Stopped).",
        "duration_s": "end_utc minus start_utc in seconds (retries included); NULL until finished. Never "
        "negative.",
        "attempts": "Sessions in the run: 1 + its automatic retries.",
        "started_by_retry": "1 when the run's first session in the warehouse is itself a retry.",
        "outcome": "`running` until the last attempt has finished (`idle` while its State is Idle: a backup "
        "copy session waiting for new restore points, not a run in progress); then its Result as EM sent it "
        "(`Success`, `Warning`, `Failed`, `None`, or an undocumented value, never read as success).",
        "first_outcome": "The same for the first attempt.",
        "recovered": "1 when the first attempt finished Failed and the outcome is Success or Warning.",
        "last_session_uid": "The run's last attempt.",
        "last_state": "State of the last attempt as EM sent it.",
        "last_result": "Result of the last attempt as EM sent it (may say Success while it still runs).",
        "failure_message": "EM's failure message of the last attempt.",
        "tasks": "Task sessions of all attempts and of their agent per-computer sessions.",
        "vms": "VMs (or computers) those tasks processed.",
        "vms_warning": "VMs whose newest task in the run finished Warning.",
        "vms_failed": "VMs whose newest task in the run finished Failed (a retry that fixed one clears it).",
        "vms_running": "VMs whose newest task in the run has not finished.",
        "computers": "Agent per-computer sessions' computers (per-computer jobs) in the run; 0 for other "
        "jobs.",
        "computers_failed": "Computers whose newest per-computer session in the run finished Failed.",
        "computers_running": "Computers whose newest per-computer session in the run has not finished.",
    },
    "v_backup_job_daily": {
        "day_utc": "UTC day the run started (a retry after midnight stays with its run).",
        "runs": "Logical runs (a scheduled session and its retries count once).",
        "attempts": "Sessions those runs took, retries included.",
        "succeeded": "Runs whose outcome is Success (recovered ones included).",
        "warnings": "Runs whose outcome is Warning.",
        "failed": "Runs whose outcome is Failed (the retries did not help).",
        "running": "Runs whose last attempt has not finished (State not Stopped), whatever its Result says, "
        "idle ones left out.",
        "idle": "Runs whose last attempt is in State Idle: a backup copy session waiting for new restore "
        "points to copy (not finished, not running).",
        "success_rate": "(succeeded + warnings) / finished runs (other included), 0..1, 4 decimals; NULL "
        "when none finished.",
    },
    "v_vm_backup_status": {
        "kind": "`vm` (a VM, judged by its VM restore points) or `agent` (a computer backed up by a Veeam "
        "Agent job, judged by its agent restore points).",
        "keyed_by": "`vm_uid` when the VM is keyed by its hierarchy reference, `name` on servers that send "
        "none, `computer_name` for an agent computer (inferred: its tasks' VmDisplayName and its agent points' "
        "name prefix are matched on its backup server).",
        "vm_uid": "The VM's hierarchy reference (task VmUid = point HierarchyObjRef); NULL when keyed by name "
        "and for agent computers.",
        "vm_display_name": "The machine's name (newest task's, else its restore points').",
        "tasks": "Backup task sessions of the machine.",
        "last_task_start_utc": "Start of the machine's newest task.",
        "last_task_state": "State of the newest task as EM sent it.",
        "last_task_result": "Result of the newest task as EM sent it (may say Success while it runs).",
        "last_result": "Result of the newest finished task (State Completed).",
        "last_reason": "Reason of the newest finished task.",
        "last_result_utc": "End of the newest finished task.",
        "last_success_utc": "End of the newest finished task that ended Success or Warning; NULL if none.",
        "last_job_uid": "Job of the newest task's session (an agent computer's: the agent job of its "
        "per-computer session's parent).",
        "last_job_name": "Its name.",
        "restore_points": "Restore points of the machine that EM still lists (VM restore points for a VM, "
        "agent restore points for an agent computer; retention-deleted ones left out).",
        "newest_point_utc": "Creation time of the newest of them; NULL when none.",
        "point_age_hours": "Hours from newest_point_utc to the database's current time; NULL when none.",
        "rpo_hours": "The backup RPO in hours (`etl_settings` key `backup_rpo_hours`, default 24).",
        "rpo_breach": "1 when no current restore point is within the RPO and the newest finished task did not "
        "end Success or Warning within it either, else 0.",
        "rpo_status": "`breach` (rpo_breach), `warning` (no current point within the RPO although the newest "
        "task succeeded within it, or the newest point older than half the RPO, or the newest finished task "
        "ended anything but Success) or `ok`.",
    },
    "v_backup_size": {
        "backup_type": "`Standard`, `ParentBackup` or `ChildBackup`.",
        "platform": "The backup's platform as EM sent it.",
        "job_uid": "The backup's job (an agent child backup: its parent's); NULL when not known.",
        "job_name": "The job's name.",
        "full_files": "Current `.vbk` files.",
        "incremental_files": "Current `.vib` files.",
        "reverse_incremental_files": "Current `.vrb` files.",
    },
    "v_backup_size_by_job": {
        "job_uid": "The job; NULL for the backups whose job is not known.",
        "repositories": "Repositories those backups are on.",
    },
    "v_backup_size_by_repository": {
        "repository_uid": "The repository; NULL for the backups whose repository is not known.",
        "jobs": "Jobs those backups belong to (known ones).",
        "capacity_bytes": "The repository's capacity as last read; NULL when unknown.",
        "free_bytes": "Its free space as last read.",
    },
    "v_repository_capacity": {
        "kind": "The repository kind as EM sent it.",
        "capacity_bytes": "Capacity as last read; NULL when EM reports -1 (unknown).",
        "free_bytes": "Free space as last read.",
        "used_bytes": "capacity_bytes - free_bytes; NULL when the capacity is unknown.",
        "free_pct": "100 * free_bytes / capacity_bytes, 2 decimals; NULL when the capacity is unknown or 0.",
        "low_free_pct": "The threshold in % (`etl_settings` key `repository_low_free_pct`, default 10).",
        "low_free": "1 when free_pct is below low_free_pct, 0 when not, NULL when free_pct is unknown.",
        "observed_utc": "When the figures were read: the newest `repository_space` row (else the row's last "
        "load).",
        "observations": "`repository_space` rows of the repository.",
        "free_7d_ago_bytes": "Free space of the newest observation at or before now - 7 days.",
        "observed_7d_ago_utc": "When that observation was taken.",
        "free_change_7d_bytes": "free_bytes - free_7d_ago_bytes (negative: space being used up); NULL when "
        "the history does not reach back 7 days.",
        "free_30d_ago_bytes": "Free space of the newest observation at or before now - 30 days.",
        "observed_30d_ago_utc": "When that observation was taken.",
        "free_change_30d_bytes": "free_bytes - free_30d_ago_bytes; NULL when the history is shorter.",
    },
    "v_repository_space_daily": {
        "day_utc": "UTC day of the observations.",
        "observed_utc": "When the day's last observation was taken.",
        "capacity_bytes": "Capacity then; NULL when unknown (EM's -1).",
        "free_bytes": "Free space then.",
        "free_pct": "100 * free_bytes / capacity_bytes, 2 decimals; NULL when the capacity is unknown or 0.",
    },
    "v_backup_failures": {
        "occurred_utc": "End of the task or session (its start when it has none): the sort key.",
        "level": "`task` (a VM or computer) or `session` (a job session that failed with no task saying "
        "why).",
        "failure_uid": "The task, else the session: the row's key.",
        "task_uid": "The task session (NULL for level `session`).",
        "session_uid": "The job session.",
        "run_uid": "The logical run (`v_backup_job_runs`); NULL under a placeholder session.",
        "attempt": "Which attempt of the run (1 = the scheduled session).",
        "is_retry": "1 when the session is an automatic retry.",
        "result": "As EM sent it: `Failed`, `Warning`, `None` or an undocumented value (never Success).",
        "vm_key": "The VM's hierarchy reference, else its name (NULL for level `session`).",
        "job_uid": "The run's job (for an agent per-computer session: the agent job, not the per-computer one).",
        "job_name": "Its name.",
        "run_outcome": "The run's outcome (`v_backup_job_runs.outcome`).",
        "recovered_by_retry": "1 when a later attempt of the same run fixed it (the same VM finished Success "
        "or Warning; for a session: the run's outcome is Success or Warning).",
        "later_success": "1 when any later finished task of the same VM on the same server ended Success or "
        "Warning (0 for sessions).",
    },
}

DEFINITIONS = """\
## Definitions

- **Instants** are UTC: `timestamptz` on PostgreSQL; on SQLite text `YYYY-MM-DD HH:MM:SS.ffffff` in UTC.
  Days (`day_utc`) are UTC calendar days.
- **Flags** in views (`is_retry`, `rpo_breach`, `later_success`, `recovered`, `low_free`, ...) are integers
  0/1 on both databases: sum them to count.
- **Finished and running**: EM's `State` and `Result` are open sets, stored exactly as sent. A job session
  has finished when its `state` is `Stopped`, a task when it is `Completed`; anything else (`Working`,
  `WaitingRepository`, a state newer than this tool) is running, whatever `result` says (EM may send
  `Success` while a task is still in progress). Running rows get no end, no duration and no outcome;
  they are counted as `running`, except a backup run whose last session is `Idle` (a backup copy waiting
  for new restore points to copy), counted as `idle`: not finished, not running either.
- **Unknown results**: a finished session whose `result` is none of `Success`, `Warning`, `Failed` (EM's
  `None`, or a value EM did not document) keeps that value in every view and is counted as `other` (or
  `tasks_other`): finished, never a success, never running. Success rates divide by all finished runs,
  `other` included.
- **Placeholders** (`placeholder` true: recorded only from a link) are left out of the views where they
  would distort figures: placeholder job sessions have no times, so they are not runs; placeholder points,
  files and repositories are not counted. Tasks under a placeholder session still count for their VM and
  in failures.
- **Retention** (`deleted_at`): restore points, VM restore points, backup files, backups, replicas and VM
  replica points that EM no longer lists keep their rows with `deleted_at` set (never hard-deleted).
  Views count only rows with `deleted_at` NULL: a VM's newest restore point and backup sizes are those EM
  still has.
- **Retries folded in** (`v_replica_job_daily`, `v_backup_job_runs`, `v_backup_job_daily`): EM starts an
  automatic retry as a new session with `is_retry` and no link to the session it retries. Per job (and
  backup server), sessions are ordered by start time. A *run* (run group) is a scheduled (non-retry)
  session together with the retry sessions of the same job that start after it and before the job's next
  non-retry session. Retries with no earlier non-retry session in the warehouse form a run of their own.
  The run belongs to the UTC day its first session started (a retry after midnight stays with its run);
  its outcome is that of its latest session. So a failed run followed by a successful retry counts once,
  as a success, and as `recovered`. `success_rate` = (successes + warnings) / finished runs.
- **Agent jobs**: an agent job's run is its `AgentBackup` session; the `AgentManagement` sessions under
  it (`parent_session_uid`, one per computer) are not runs of their own: they and their tasks count under
  the parent's run (`computers*`, `tasks`, `vms*` in `v_backup_job_runs`). Jobs are keyed
  `urn:veeam:Job:<guid>` for agent jobs too.
- **Machines** (`v_vm_backup_status`, the report): every machine Veeam backs up, VMs and agent computers
  (`kind` `vm` or `agent`). EM keeps an agent computer's restore points as `AgentRestorePoint`s, not
  `VmRestorePoint`s (`agent_restore_points`); its backup task sessions run under agent job sessions
  (`AgentBackup`, or `AgentManagement` under its parent) and name it in `vm_display_name`.
- **Machine key** (`v_vm_backup_status`): a VM's hierarchy reference (task `vm_uid` = restore point
  `hierarchy_obj_ref`) when EM sends it; on servers that send none (before v10), the VM's name on its
  backup server (a point without name elements: its name up to the last `@`). A name that maps to exactly
  one reference on the same server is joined to that reference. An agent computer is keyed by its
  computer name on its backup server (its tasks' `vm_display_name` = its agent points' `computer_name`).
  `keyed_by` says which key a row has.
- **Task to restore point** (`backup_task_sessions.vm_restore_point_uid`): EM's Related link when it gives
  one (`vm_restore_point_link` = `link`); otherwise inferred by the loader (`inferred`): a point of the
  same VM created within the task's time window by a task that ended Success or Warning.
- **"Now"** (`hours_since_success`, `point_age_hours`, `rpo_*`, the 7/30-day changes of
  `v_repository_capacity`) is the database's current time when the query runs: `CURRENT_TIMESTAMP`
  (PostgreSQL: the start of the transaction; SQLite: `'now'` of the statement). No time is stored in the
  views. The HTML and table reports use the same clock (`SELECT now_utc FROM v__clock`).
- **RPO** (replication) is `etl_settings` row `rpo_hours` (default `24`, inserted by the first migration):
  change it with `UPDATE etl_settings SET value = '12' WHERE key = 'rpo_hours'`. A VM breaches (`rpo_breach`
  = 1, `rpo_status` red) when its newest finished Success/Warning task ended more than `rpo_hours` ago, or
  never. Amber: not in breach, but the last success is older than half the RPO, or the newest finished
  task ended anything but Success. Green otherwise.
- **Backup RPO** is `etl_settings` row `backup_rpo_hours`, 24 when the row is absent (add it with
  `INSERT INTO etl_settings (key, value) VALUES ('backup_rpo_hours', '12')`). `v_vm_backup_status` judges
  the age of the machine's newest restore point EM still lists: `breach` older than the RPO (or none) and
  the newest finished task did not end Success or Warning within the RPO either (a machine whose newest
  task succeeded within the RPO is never a breach for want of a point: `warning` then); `warning` older
  than half of it or the newest finished task ended anything but Success; `ok` otherwise.
- **Sizes**: a task's `total_size` (EM's TotalSize) is the size of the VM processed, not bytes transferred
  (`v_replica_source_size_daily`; `v_replica_transfer_daily` is its deprecated old name). Bytes on disk
  come from backup files: `backup_size` (written) and `data_size` (read from the source). GB in reports
  are 2^30 bytes.
- **Unknown capacity**: EM reports a repository's capacity as -1 when it does not know it, and object
  storage reports its free space as -1 as well; the warehouse stores NULL for both and views never divide
  by them (`free_pct` NULL).
- **Undocumented values**: enumerations (`state`, `result`, `job_type`, `kind`, ...) are stored exactly as
  EM sends them. A value EM's documentation does not list is warned about once per warehouse, when a run
  first meets it, and recorded in `etl_undocumented_values` (`veeam-etl status` lists them);
  `etl_runs.new_values` counts those first met in that run.
- **Order**: views keep no order; use the `ORDER BY` given under each view.
"""


def _type(col: Column) -> str:
    if isinstance(col.type, schema.UTCDateTime):
        return "timestamptz (SQLite: UTC text)"
    pg = col.type.compile(dialect=postgresql.dialect()).lower()
    lite = col.type.compile(dialect=sqlite.dialect()).lower()
    return pg if pg == lite or col.type.__class__.__name__ != "Boolean" else f"{pg} (SQLite: 0/1)"


def cell(s: str) -> str:
    """`s` as one Markdown table cell."""
    return s.replace("|", "\\|").replace("\n", " ")


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
        if not line[2:].strip().startswith("order:"):  # the read order is printed on its own
            lines.append(line[2:].strip())
    return " ".join(lines)


def _fks(table: Table) -> dict[str, str]:
    return {
        c.name: f"{fk.column.table.name}.{fk.column.name}" for c in table.columns for fk in c.foreign_keys
    }


def tables() -> list[Table]:
    """Every table: the entity tables in load order (parents first), then the others by name."""
    entity = [t.name for t in registry.tables()]
    return sorted(
        schema.metadata.tables.values(),
        key=lambda t: (0, entity.index(t.name)) if t.name in entity else (1, t.name),
    )


def _derived() -> list[str]:
    """The "Derived values" section: each column marked DERIVED with its comment, table by table; then a
    column that means the same in several tables, once, naming them; then the derived view columns."""
    same: dict[tuple[str, str], list[str]] = {}
    for table in tables():
        for c in table.columns:
            if c.info.get("derived"):
                same.setdefault((c.name, c.comment or MISSING), []).append(table.name)
    out = [
        "## Derived values",
        "",
        "Values the loader works out itself rather than reads from EM, each marked apart from EM's facts (by "
        "a sibling column such as `job_uid_source` or `vm_restore_point_link`, or by what it is) so that a "
        "dashboard can tell them apart:",
        "",
    ]
    for (column, comment), names in sorted(same.items(), key=lambda item: len(item[1]) > 1):
        where = f"`{names[0]}.{column}`" if len(names) == 1 else f"`{column}` ({', '.join(names)})"
        out.append(f"- {where}: {comment}")
    out += [f"- `{view}.{column}`: {view_meaning(view, column)}" for view, column in DERIVED_VIEW_COLUMNS]
    return [*out, ""]


def render() -> str:
    out = [
        "# Warehouse data dictionary",
        "",
        "Generated from `etl/schema/` (each table's and column's comment, which PostgreSQL stores too) and "
        "`sql/*.sql` by `python scripts/datadict.py > docs/warehouse.md`; do not edit by hand "
        "(`tests/unit/test_docs.py` fails when this file is out of date).",
        "",
        "Tables are managed by Alembic (`veeam-etl migrate`); views are dropped and re-created from `sql/` on "
        "every migrate. BI tools should read the `v_*` views. `v__*` views are helpers that hide "
        "SQLite/PostgreSQL differences (epoch seconds, UTC days, the current time): not a stable interface.",
        "",
        DEFINITIONS,
        *_derived(),
        "## Tables",
        "",
    ]
    for table in tables():
        fks = _fks(table)
        out += [
            f"### {table.name}",
            "",
            table.comment or MISSING,
            "",
            "| column | type | null | key | meaning |",
            "|---|---|---|---|---|",
        ]
        for c in table.columns:
            key = "PK" if c.primary_key else f"FK → {fks[c.name]}" if c.name in fks else ""
            if c.primary_key and c.name in fks:
                key = f"PK, FK → {fks[c.name]}"
            out.append(
                f"| `{c.name}` | {_type(c)} | {'yes' if c.nullable else 'no'} | {key} | {cell(c.comment or MISSING)} |"
            )
        out.append("")  # indexes are left out: they change with tuning, not with meaning
    out += ["## Views", ""]
    for name, columns in view_columns().items():
        out += [f"### {name}", "", _view_summary(name), ""]
        if name in report.VIEWS:
            out += [f"Read with `SELECT * FROM {name} ORDER BY {report.VIEWS[name]}`.", ""]
        out += ["| column | meaning |", "|---|---|"]
        out += [f"| `{c}` | {cell(view_meaning(name, c))} |" for c in columns]
        out.append("")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
