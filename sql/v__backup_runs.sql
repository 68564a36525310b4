-- Helper: one row per logical backup job run (v__backup_run_sessions says which sessions make a run):
-- its first and last attempt, its outcome ('running' until the last attempt has finished, State Stopped,
-- whatever its Result says, or 'idle' while it is in State Idle: a backup copy session waiting for new
-- restore points to copy; then that Result as EM sent it, 'None' when EM sent none), start, end and
-- duration (NULL until finished). v_backup_job_runs adds the run's task sessions and per-computer
-- sessions; read v_backup_job_runs and v_backup_job_daily instead.
CREATE VIEW v__backup_runs AS
WITH attempts AS (
    SELECT r.run_uid, r.attempt, s.uid, s.backup_server_uid, s.job_uid, s.job_type, s.creation_time_utc,
           s.end_time_utc, s.state, s.result, s.failure_message, s.is_retry, s.is_finished, s.start_epoch,
           s.end_epoch, s.start_day_utc,
           MAX(r.attempt) OVER (PARTITION BY r.run_uid) AS attempts,
           FIRST_VALUE(s.job_name) OVER (PARTITION BY s.backup_server_uid, s.job_uid
                                         ORDER BY s.creation_time_utc DESC, s.uid DESC) AS latest_job_name
    FROM v__backup_run_sessions r
    JOIN v__backup_job_sessions s ON s.uid = r.session_uid
    WHERE r.is_child = 0
),
runs AS (
    SELECT run_uid,
           MAX(backup_server_uid) AS backup_server_uid,
           MAX(job_uid) AS job_uid,
           MAX(latest_job_name) AS job_name,
           MAX(attempts) AS attempts,
           SUM(is_retry) AS retry_sessions,
           MAX(CASE WHEN attempt = 1 THEN job_type END) AS job_type,
           MAX(CASE WHEN attempt = 1 THEN is_retry END) AS started_by_retry,
           MAX(CASE WHEN attempt = 1 THEN creation_time_utc END) AS start_utc,
           MAX(CASE WHEN attempt = 1 THEN start_epoch END) AS start_epoch,
           MAX(CASE WHEN attempt = 1 THEN start_day_utc END) AS day_utc,
           MAX(CASE WHEN attempt = 1 THEN is_finished END) AS first_finished,
           MAX(CASE WHEN attempt = 1 THEN state END) AS first_state,
           MAX(CASE WHEN attempt = 1 THEN result END) AS first_result,
           MAX(CASE WHEN attempt = attempts THEN uid END) AS last_session_uid,
           MAX(CASE WHEN attempt = attempts THEN state END) AS last_state,
           MAX(CASE WHEN attempt = attempts THEN result END) AS last_result,
           MAX(CASE WHEN attempt = attempts THEN is_finished END) AS last_finished,
           MAX(CASE WHEN attempt = attempts THEN end_time_utc END) AS last_end_utc,
           MAX(CASE WHEN attempt = attempts THEN end_epoch END) AS last_end_epoch,
           MAX(CASE WHEN attempt = attempts THEN failure_message END) AS failure_message
    FROM attempts
    GROUP BY run_uid
)
SELECT r.run_uid, r.backup_server_uid, r.job_uid, COALESCE(r.job_name, j.name) AS job_name, r.job_type,
       r.day_utc, r.start_utc, r.start_epoch,
       CASE WHEN r.last_finished = 1 THEN r.last_end_utc END AS end_utc,
       CASE WHEN r.last_finished = 1 AND r.last_end_epoch >= r.start_epoch
            THEN CAST(ROUND(CAST(r.last_end_epoch - r.start_epoch AS NUMERIC), 3) AS DOUBLE PRECISION)
       END AS duration_s,
       r.attempts, r.retry_sessions, r.started_by_retry,
       CASE WHEN r.last_finished = 1 THEN COALESCE(r.last_result, 'None')
            WHEN r.last_state = 'Idle' THEN 'idle'
            ELSE 'running'
       END AS outcome,
       CASE WHEN r.first_finished = 1 THEN COALESCE(r.first_result, 'None')
            WHEN r.first_state = 'Idle' THEN 'idle'
            ELSE 'running'
       END AS first_outcome,
       CASE WHEN r.attempts > 1 AND r.first_finished = 1 AND r.first_result = 'Failed'
                 AND r.last_finished = 1 AND r.last_result IN ('Success', 'Warning')
            THEN 1 ELSE 0
       END AS recovered,
       r.last_session_uid, r.last_state, r.last_result, r.failure_message
FROM runs r
LEFT JOIN jobs j ON j.uid = r.job_uid
