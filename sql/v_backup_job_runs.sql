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
WITH run_sessions AS (
    SELECT * FROM v__backup_run_sessions
),
run_tasks AS (
    SELECT r.run_uid, t.state, t.result,
           COALESCE(t.vm_uid, t.vm_display_name) AS vm_key,
           ROW_NUMBER() OVER (PARTITION BY r.run_uid, COALESCE(t.vm_uid, t.vm_display_name)
                              ORDER BY t.creation_time_utc DESC, t.uid DESC) AS rn
    FROM run_sessions r
    JOIN backup_task_sessions t ON t.job_session_uid = r.session_uid
),
task_counts AS (
    SELECT run_uid,
           COUNT(*) AS tasks,
           COUNT(DISTINCT vm_key) AS vms,
           SUM(CASE WHEN rn = 1 AND state = 'Completed' AND result = 'Warning' THEN 1 ELSE 0 END) AS vms_warning,
           SUM(CASE WHEN rn = 1 AND state = 'Completed' AND result = 'Failed' THEN 1 ELSE 0 END) AS vms_failed,
           SUM(CASE WHEN rn = 1 AND (state IS NULL OR state <> 'Completed') THEN 1 ELSE 0 END) AS vms_running
    FROM run_tasks
    GROUP BY run_uid
),
run_children AS (
    SELECT r.run_uid, c.is_finished, c.result,
           COALESCE(c.job_uid, c.job_name, c.uid) AS computer,
           ROW_NUMBER() OVER (PARTITION BY r.run_uid, COALESCE(c.job_uid, c.job_name, c.uid)
                              ORDER BY c.creation_time_utc DESC, c.uid DESC) AS rn
    FROM run_sessions r
    JOIN v__backup_job_sessions c ON c.uid = r.session_uid
    WHERE r.is_child = 1
),
child_counts AS (
    SELECT run_uid,
           COUNT(DISTINCT computer) AS computers,
           SUM(CASE WHEN rn = 1 AND is_finished = 1 AND result = 'Failed' THEN 1 ELSE 0 END) AS computers_failed,
           SUM(CASE WHEN rn = 1 AND is_finished = 0 THEN 1 ELSE 0 END) AS computers_running
    FROM run_children
    GROUP BY run_uid
)
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
       COALESCE(t.tasks, 0) AS tasks,
       COALESCE(t.vms, 0) AS vms,
       COALESCE(t.vms_warning, 0) AS vms_warning,
       COALESCE(t.vms_failed, 0) AS vms_failed,
       COALESCE(t.vms_running, 0) AS vms_running,
       COALESCE(c.computers, 0) AS computers,
       COALESCE(c.computers_failed, 0) AS computers_failed,
       COALESCE(c.computers_running, 0) AS computers_running
FROM v__backup_runs r
LEFT JOIN backup_servers b ON b.uid = r.backup_server_uid
LEFT JOIN task_counts t ON t.run_uid = r.run_uid
LEFT JOIN child_counts c ON c.run_uid = r.run_uid
