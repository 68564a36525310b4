"""The metric families `veeam-etl metrics` exposes, declared once: name, kind (gauge or info), the
labels every series has, and HELP. The collection (etl.metrics.collection) yields only these; the alert
rules (deploy/prometheus/) and their tests read them. Imports nothing else of etl.
"""

from __future__ import annotations

from dataclasses import dataclass

# Labels that name what a series is about. Two things of one name (two VMs called `web01` on one
# backup server, two backup servers of one name in one source) get one more label where, and only
# where, that happens: backup_server_uid, machine_ref (the view's vm_key), job_uid or repository_uid.
MACHINE = ("source", "backup_server", "machine", "side", "kind")
JOB = ("source", "backup_server", "job", "side")
REPOSITORY = ("source", "backup_server", "repository")
SOURCE = ("source",)

MESSAGE_CHARS = 200  # EM's failure message and the loader's error as a label: at most this many characters


@dataclass(frozen=True)
class Family:
    """One metric family as exposed: its name, `gauge` or `info` (a gauge of value 1 whose labels carry
    text; the name ends in `_info`), the labels every series has, and its HELP text."""

    name: str
    kind: str
    labels: tuple[str, ...]
    help: str


FAMILIES: tuple[Family, ...] = (
    # per protected machine: v_vm_backup_status (side="backup") and v_vm_replica_status (side="replication")
    Family(
        "veeam_machine_restore_point_age_seconds",
        "gauge",
        MACHINE,
        "Age of the newest restore point (backup: of the VM or agent computer) or replica point "
        "(replication) that EM still lists, by the warehouse's clock at collection; absent when there is none.",
    ),
    Family(
        "veeam_machine_rpo_seconds",
        "gauge",
        MACHINE,
        "The recovery point objective the machine is checked against (etl_settings backup_rpo_hours / "
        "rpo_hours, default 24 h).",
    ),
    Family(
        "veeam_machine_rpo_breach",
        "gauge",
        MACHINE,
        "1 when the machine is out of its RPO as the status views judge it (backup: neither a restore "
        "point nor a successful task within the RPO; replication: no successful task within it), else 0.",
    ),
    # per job: v_backup_job_runs (side="backup") and v_replica_job_runs folded into runs (side="replication")
    Family(
        "veeam_job_last_run_info",
        "info",
        (*JOB, "job_type", "result", "message"),
        "The job's last finished run (automatic retries folded in): result as EM sent it and EM's failure "
        f"message (whitespace collapsed, at most {MESSAGE_CHARS} characters).",
    ),
    Family(
        "veeam_job_last_run_success",
        "gauge",
        JOB,
        "1 when the job's last finished run (automatic retries folded in) ended Success or Warning, "
        "0 when it ended Failed or with any other result.",
    ),
    Family(
        "veeam_job_last_run_end_timestamp_seconds",
        "gauge",
        JOB,
        "End of the job's last finished run, Unix time.",
    ),
    Family(
        "veeam_job_last_success_timestamp_seconds",
        "gauge",
        JOB,
        "End of the job's last run that ended Success or Warning, Unix time; absent when none did.",
    ),
    Family(
        "veeam_job_runs_24h",
        "gauge",
        JOB,
        "Runs of the job (automatic retries folded in) that started in the 24 hours before collection.",
    ),
    Family(
        "veeam_job_failed_runs_24h",
        "gauge",
        JOB,
        "Of veeam_job_runs_24h, the runs whose final result is Failed.",
    ),
    # per repository: v_repository_capacity
    Family(
        "veeam_repository_capacity_bytes",
        "gauge",
        REPOSITORY,
        "Capacity of the backup repository; absent when EM does not know it.",
    ),
    Family(
        "veeam_repository_free_bytes",
        "gauge",
        REPOSITORY,
        "Free space of the backup repository; absent when EM does not know it.",
    ),
    # per source (one Enterprise Manager): etl_runs
    Family(
        "veeam_etl_last_success_timestamp_seconds",
        "gauge",
        SOURCE,
        "End of the loader's last successful run of this source, Unix time.",
    ),
    Family(
        "veeam_etl_last_run_info",
        "info",
        (*SOURCE, "status", "mode", "error"),
        "The loader's last finished run of this source: status (succeeded, failed), mode, and its error "
        f"(at most {MESSAGE_CHARS} characters; empty when it succeeded).",
    ),
    Family(
        "veeam_etl_last_run_success",
        "gauge",
        SOURCE,
        "1 when the loader's last finished run of this source succeeded, else 0.",
    ),
    Family(
        "veeam_etl_last_run_end_timestamp_seconds",
        "gauge",
        SOURCE,
        "End of the loader's last finished run of this source, Unix time.",
    ),
    Family(
        "veeam_etl_last_run_duration_seconds",
        "gauge",
        SOURCE,
        "Duration of the loader's last finished run of this source.",
    ),
    Family(
        "veeam_etl_last_run_rows_written",
        "gauge",
        (*SOURCE, "operation"),
        "Rows the loader's last finished run of this source inserted or updated (operation label).",
    ),
    Family(
        "veeam_etl_last_run_requests",
        "gauge",
        SOURCE,
        "HTTP requests the loader's last finished run of this source sent to Enterprise Manager.",
    ),
    Family(
        "veeam_etl_last_run_undocumented_values",
        "gauge",
        SOURCE,
        "Values EM documents nowhere that the loader's last finished run of this source stored as sent.",
    ),
)
BY_NAME = {f.name: f for f in FAMILIES}
