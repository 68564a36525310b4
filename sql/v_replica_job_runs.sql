-- One row per replication job session (placeholder sessions, known only from a link, are left out):
-- its job and backup server, start and end, duration (NULL until the session has finished, i.e. State
-- Stopped, or when the end precedes the start), state and result as EM sent them (a session that has
-- not finished may say Success: read state first), whether it was an automatic retry, and its task
-- sessions counted by outcome (a task is finished when its State is Completed; a finished task whose
-- Result is none of Success/Warning/Failed counts as other) with their source size (EM's TotalSize:
-- the size of the VMs processed, not bytes moved).
-- order: creation_time_utc DESC, session_uid
CREATE VIEW v_replica_job_runs AS
SELECT s.job_uid,
       s.job_name,
       s.backup_server_uid,
       b.name AS backup_server_name,
       s.uid AS session_uid,
       s.name AS session_name,
       s.creation_time_utc,
       s.end_time_utc,
       s.start_day_utc AS day_utc,
       CASE WHEN s.is_finished = 0 OR s.end_epoch IS NULL OR s.end_epoch < s.start_epoch THEN NULL
            ELSE CAST(ROUND(CAST(s.end_epoch - s.start_epoch AS NUMERIC), 3) AS DOUBLE PRECISION)
       END AS duration_s,
       s.state,
       s.result,
       s.is_retry,
       s.failure_message,
       COALESCE(t.tasks, 0) AS tasks,
       COALESCE(t.tasks_success, 0) AS tasks_success,
       COALESCE(t.tasks_warning, 0) AS tasks_warning,
       COALESCE(t.tasks_failed, 0) AS tasks_failed,
       COALESCE(t.tasks_running, 0) AS tasks_running,
       COALESCE(t.tasks_other, 0) AS tasks_other,
       COALESCE(t.total_bytes, 0) AS total_bytes
FROM v__job_sessions s
LEFT JOIN backup_servers b ON b.uid = s.backup_server_uid
LEFT JOIN (
    SELECT job_session_uid,
           COUNT(*) AS tasks,
           SUM(CASE WHEN is_finished = 1 AND result = 'Success' THEN 1 ELSE 0 END) AS tasks_success,
           SUM(CASE WHEN is_finished = 1 AND result = 'Warning' THEN 1 ELSE 0 END) AS tasks_warning,
           SUM(CASE WHEN is_finished = 1 AND result = 'Failed' THEN 1 ELSE 0 END) AS tasks_failed,
           SUM(1 - is_finished) AS tasks_running,
           SUM(CASE WHEN is_finished = 1 AND (result IS NULL OR result NOT IN ('Success', 'Warning', 'Failed'))
                    THEN 1 ELSE 0 END) AS tasks_other,
           CAST(SUM(total_size) AS BIGINT) AS total_bytes
    FROM v__task_sessions
    GROUP BY job_session_uid
) t ON t.job_session_uid = s.uid
