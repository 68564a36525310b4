-- One row per logical run of a backup job: a scheduled (non-retry) session plus the automatic retry
-- sessions of the same job that follow it, up to the job's next non-retry session (EM links a retry to
-- nothing; retries whose scheduled session is older than the warehouse's history form a run of their
-- own, started_by_retry = 1). Agent per-computer sessions (AgentManagement, with a parent session) are
-- not runs: they count under their parent's run (computers*), and their tasks with the run's tasks.
-- outcome is that of the last attempt: 'running' until it has finished (State Stopped), whatever its
-- Result says ('idle' while its State is Idle: a backup copy session waiting for new restore points to
-- copy, not a run in progress); then its Result exactly as EM sent it ('None' when none), an unknown
-- value included (never read as a success). end_utc and duration_s stay NULL until the last attempt has finished.
-- Placeholder sessions (known only from a link) are left out.
-- order: start_utc DESC, run_uid
CREATE VIEW v_backup_job_runs AS
SELECT r.job_uid,
       r.job_name,
       r.job_type,
       r.backup_server_uid,
       b.name AS backup_server_name,
       r.run_uid,
       r.day_utc,
       r.start_utc,
       r.end_utc,
       r.duration_s,
       r.attempts,
       r.started_by_retry,
       r.outcome,
       r.first_outcome,
       r.recovered,
       r.last_session_uid,
       r.last_state,
       r.last_result,
       r.failure_message,
       r.tasks,
       r.vms,
       r.vms_warning,
       r.vms_failed,
       r.vms_running,
       r.computers,
       r.computers_failed,
       r.computers_running
FROM v__backup_runs r
LEFT JOIN backup_servers b ON b.uid = r.backup_server_uid
