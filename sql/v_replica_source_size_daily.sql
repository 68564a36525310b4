-- Per backup server per UTC day on which replication task sessions finished (State Completed; a task
-- running across midnight counts on the day it finished; tasks still running are not counted yet):
-- finished tasks by result, and the sum of their source size, EM's TotalSize: the size of each VM
-- processed, not the bytes moved (EM reports no transferred bytes per task), for all of them and for
-- those that finished Success or Warning.
-- order: day_utc DESC, backup_server_name, backup_server_uid
CREATE VIEW v_replica_source_size_daily AS
SELECT t.backup_server_uid,
       b.name AS backup_server_name,
       t.end_day_utc AS day_utc,
       COUNT(*) AS tasks,
       SUM(CASE WHEN t.result = 'Success' THEN 1 ELSE 0 END) AS tasks_success,
       SUM(CASE WHEN t.result = 'Warning' THEN 1 ELSE 0 END) AS tasks_warning,
       SUM(CASE WHEN t.result = 'Failed' THEN 1 ELSE 0 END) AS tasks_failed,
       SUM(CASE WHEN t.result IS NULL OR t.result NOT IN ('Success', 'Warning', 'Failed') THEN 1 ELSE 0 END)
           AS tasks_other,
       CAST(COALESCE(SUM(t.total_size), 0) AS BIGINT) AS source_bytes,
       CAST(COALESCE(SUM(CASE WHEN t.result IN ('Success', 'Warning') THEN t.total_size END), 0) AS BIGINT)
           AS source_bytes_ok
FROM v__task_sessions t
LEFT JOIN backup_servers b ON b.uid = t.backup_server_uid
WHERE t.is_finished = 1 AND t.end_epoch IS NOT NULL
GROUP BY t.backup_server_uid, b.name, t.end_day_utc
