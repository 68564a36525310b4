-- Helper (PostgreSQL): v__vm_replica_tasks with the end of the VM's last success as Unix epoch seconds,
-- its newest task (newest creation time, then uid) and its newest finished task (State Completed), as
-- PostgreSQL orders them (a task without a creation time before every other): the task at the VM's
-- newest creation time, or one without a creation time when the VM has such a task, found through the
-- index on (vm_display_name, creation_time_utc); the newest finished task is the newest task when that
-- one has finished, else looked up the same way among the VM's finished tasks. NULL columns when the
-- VM has no such task.
CREATE VIEW v__vm_replica_tasks_newest AS
SELECT g.backup_server_uid, g.vm_display_name, g.tasks, g.last_success_utc,
       CAST(EXTRACT(EPOCH FROM g.last_success_utc) AS DOUBLE PRECISION) AS last_success_epoch,
       n.creation_time_utc AS newest_start_utc, n.state AS newest_state, n.result AS newest_result,
       CASE WHEN n.state = 'Completed' THEN n.result ELSE f.result END AS finished_result,
       CASE WHEN n.state = 'Completed' THEN n.end_time_utc ELSE f.end_time_utc END AS finished_end_utc
FROM v__vm_replica_tasks g
LEFT JOIN LATERAL (
    SELECT t.uid, t.creation_time_utc, t.state, t.result, t.end_time_utc
    FROM replica_task_sessions t
    WHERE t.vm_display_name = g.vm_display_name AND t.creation_time_utc = g.newest_start AND g.untimed = 0
      AND t.backup_server_uid IS NOT DISTINCT FROM g.backup_server_uid
    UNION ALL
    SELECT t.uid, t.creation_time_utc, t.state, t.result, t.end_time_utc
    FROM replica_task_sessions t
    WHERE t.vm_display_name = g.vm_display_name AND t.creation_time_utc IS NULL AND g.untimed > 0
      AND t.backup_server_uid IS NOT DISTINCT FROM g.backup_server_uid
    ORDER BY uid DESC
    LIMIT 1
) n ON TRUE
LEFT JOIN LATERAL (
    SELECT t.uid, t.result, t.end_time_utc
    FROM replica_task_sessions t
    WHERE n.state IS DISTINCT FROM 'Completed'
      AND t.vm_display_name = g.vm_display_name AND t.state = 'Completed'
      AND t.backup_server_uid IS NOT DISTINCT FROM g.backup_server_uid
    ORDER BY t.creation_time_utc DESC, t.uid DESC
    LIMIT 1
) f ON TRUE
