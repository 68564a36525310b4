-- What went wrong in backup jobs, newest first: every finished task session (State Completed) whose
-- Result is not Success (Failed, Warning, or a value EM did not document, shown as sent), with its
-- reason (level 'task'); and every finished job session (a run's attempt, or an agent per-computer
-- session) whose Result is not Success although none of its own tasks or per-computer sessions says why
-- (a job that failed before processing anything; level 'session', reason = EM's failure message). Each
-- row carries the logical run it belongs to (v_backup_job_runs), the attempt, the run's outcome, and
-- recovered_by_retry = 1 when a later attempt of the same run fixed it (for a task: a later attempt
-- processed the same VM and finished Success or Warning; for a session: the run's outcome is Success or
-- Warning). later_success = 1 when any later task of the same VM on the same backup server finished
-- Success or Warning (session rows: 0). failure_uid (the task, else the session) is the key.
-- order: occurred_utc DESC, failure_uid
CREATE VIEW v_backup_failures AS
WITH run_tasks AS (
    SELECT rs.run_uid, rs.attempt, t.uid, t.state, t.result,
           COALESCE(t.vm_uid, t.vm_display_name) AS vm_key
    FROM v__backup_run_sessions rs
    JOIN backup_task_sessions t ON t.job_session_uid = rs.session_uid
),
fixed_in_run AS (
    SELECT run_uid, vm_key, MAX(attempt) AS last_ok_attempt
    FROM run_tasks
    WHERE state = 'Completed' AND result IN ('Success', 'Warning')
    GROUP BY run_uid, vm_key
),
vm_last_ok AS (
    SELECT backup_server_uid, COALESCE(vm_uid, vm_display_name) AS vm_key,
           MAX(creation_time_utc) AS last_ok_start_utc
    FROM backup_task_sessions
    WHERE state = 'Completed' AND result IN ('Success', 'Warning')
    GROUP BY backup_server_uid, COALESCE(vm_uid, vm_display_name)
),
task_rows AS (
    SELECT COALESCE(t.end_time_utc, t.creation_time_utc) AS occurred_utc,
           'task' AS level,
           t.uid AS failure_uid,
           t.uid AS task_uid,
           t.job_session_uid AS session_uid,
           rs.run_uid,
           rs.attempt,
           t.result,
           t.reason,
           COALESCE(t.vm_uid, t.vm_display_name) AS vm_key,
           t.vm_display_name,
           t.backup_server_uid,
           CASE WHEN fx.last_ok_attempt > rs.attempt THEN 1 ELSE 0 END AS recovered_by_retry,
           CASE WHEN ok.last_ok_start_utc > t.creation_time_utc THEN 1 ELSE 0 END AS later_success
    FROM backup_task_sessions t
    LEFT JOIN v__backup_run_sessions rs ON rs.session_uid = t.job_session_uid
    LEFT JOIN fixed_in_run fx ON fx.run_uid = rs.run_uid
                             AND fx.vm_key = COALESCE(t.vm_uid, t.vm_display_name)
    LEFT JOIN vm_last_ok ok ON COALESCE(ok.backup_server_uid, '') = COALESCE(t.backup_server_uid, '')
                           AND ok.vm_key = COALESCE(t.vm_uid, t.vm_display_name)
    WHERE t.state = 'Completed' AND (t.result IS NULL OR t.result <> 'Success')
),
session_rows AS (
    SELECT COALESCE(s.end_time_utc, s.creation_time_utc) AS occurred_utc,
           'session' AS level,
           s.uid AS failure_uid,
           CAST(NULL AS VARCHAR(200)) AS task_uid,
           s.uid AS session_uid,
           rs.run_uid,
           rs.attempt,
           s.result,
           s.failure_message AS reason,
           CAST(NULL AS VARCHAR(500)) AS vm_key,
           CAST(NULL AS VARCHAR(500)) AS vm_display_name,
           s.backup_server_uid,
           CASE WHEN rs.attempt < r.attempts AND r.outcome IN ('Success', 'Warning') THEN 1 ELSE 0 END
               AS recovered_by_retry,
           0 AS later_success
    FROM v__backup_job_sessions s
    LEFT JOIN v__backup_run_sessions rs ON rs.session_uid = s.uid
    LEFT JOIN v__backup_runs r ON r.run_uid = rs.run_uid
    WHERE s.is_finished = 1 AND (s.result IS NULL OR s.result <> 'Success')
      AND NOT EXISTS (SELECT 1 FROM backup_task_sessions t
                      WHERE t.job_session_uid = s.uid AND t.state = 'Completed'
                        AND (t.result IS NULL OR t.result <> 'Success'))
      AND NOT EXISTS (SELECT 1 FROM backup_job_sessions c
                      WHERE c.parent_session_uid = s.uid AND NOT c.placeholder AND c.state = 'Stopped'
                        AND (c.result IS NULL OR c.result <> 'Success'))
),
failures AS (
    SELECT * FROM task_rows
    UNION ALL
    SELECT * FROM session_rows
)
SELECT f.occurred_utc,
       f.level,
       f.failure_uid,
       f.task_uid,
       f.session_uid,
       f.run_uid,
       f.attempt,
       CASE WHEN s.is_retry THEN 1 ELSE 0 END AS is_retry,
       f.result,
       f.reason,
       f.vm_key,
       f.vm_display_name,
       COALESCE(r.job_uid, s.job_uid) AS job_uid,
       COALESCE(r.job_name, s.job_name) AS job_name,
       f.backup_server_uid,
       b.name AS backup_server_name,
       r.outcome AS run_outcome,
       f.recovered_by_retry,
       f.later_success
FROM failures f
LEFT JOIN backup_job_sessions s ON s.uid = f.session_uid
LEFT JOIN v__backup_runs r ON r.run_uid = f.run_uid
LEFT JOIN backup_servers b ON b.uid = f.backup_server_uid
