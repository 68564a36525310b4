-- Per backup server per UTC day on which task sessions ended (a task running across midnight counts
-- on the day it finished; running tasks are not counted yet): finished tasks by result and the bytes
-- they processed (EM's TotalSize), all of them and those that ended Success or Warning.
CREATE VIEW v_replica_transfer_daily AS
SELECT t.backup_server_uid,
       b.name AS backup_server_name,
       t.end_day_utc AS day_utc,
       COUNT(*) AS tasks,
       SUM(CASE WHEN t.result = 'Success' THEN 1 ELSE 0 END) AS tasks_success,
       SUM(CASE WHEN t.result = 'Warning' THEN 1 ELSE 0 END) AS tasks_warning,
       SUM(CASE WHEN t.result = 'Failed' THEN 1 ELSE 0 END) AS tasks_failed,
       CAST(COALESCE(SUM(t.total_size), 0) AS BIGINT) AS bytes,
       CAST(COALESCE(SUM(CASE WHEN t.result IN ('Success', 'Warning') THEN t.total_size END), 0) AS BIGINT)
           AS bytes_ok
FROM v__task_sessions t
LEFT JOIN backup_servers b ON b.uid = t.backup_server_uid
WHERE t.end_epoch IS NOT NULL AND t.result <> 'None'
GROUP BY t.backup_server_uid, b.name, t.end_day_utc
