-- Task sessions that finished (State Completed) Failed or Warning, with their reason, VM, job, session
-- and backup server. occurred_utc (end, else start) is the sort key. later_success is 1 when a later
-- task of the same VM on the same backup server finished Success or Warning (e.g. the automatic retry
-- fixed it); a task still running is not a success, whatever its Result says.
-- order: occurred_utc DESC, task_uid
CREATE VIEW v_replica_failures AS
SELECT t.uid AS task_uid,
       COALESCE(t.end_time_utc, t.creation_time_utc) AS occurred_utc,
       t.creation_time_utc,
       t.end_time_utc,
       t.result,
       t.reason,
       t.vm_display_name,
       t.backup_server_uid,
       b.name AS backup_server_name,
       s.job_uid,
       s.job_name,
       t.job_session_uid,
       s.name AS session_name,
       CASE WHEN s.is_retry THEN 1 ELSE 0 END AS is_retry,
       CASE WHEN EXISTS (
                SELECT 1 FROM replica_task_sessions l
                WHERE l.vm_display_name = t.vm_display_name
                  AND (l.backup_server_uid = t.backup_server_uid
                       OR (l.backup_server_uid IS NULL AND t.backup_server_uid IS NULL))
                  AND l.state = 'Completed'
                  AND l.result IN ('Success', 'Warning')
                  AND l.creation_time_utc > t.creation_time_utc)
            THEN 1 ELSE 0
       END AS later_success
FROM replica_task_sessions t
LEFT JOIN replica_job_sessions s ON s.uid = t.job_session_uid
LEFT JOIN backup_servers b ON b.uid = t.backup_server_uid
WHERE t.state = 'Completed' AND t.result IN ('Failed', 'Warning')
