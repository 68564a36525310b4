-- Helper (PostgreSQL): v__vm_replica_tasks with each VM's newest task (newest creation time, then uid)
-- and newest finished task (State Completed), as PostgreSQL orders them (a task without a creation time
-- before every other): the task at the VM's newest creation time, or one without a creation time when
-- the VM has such a task, found through the index on (vm_display_name, creation_time_utc); NULL columns
-- when the VM has no such task.
CREATE VIEW v__vm_replica_tasks_newest AS
SELECT g.backup_server_uid, g.vm_display_name, g.tasks, g.last_success_utc, g.last_success_epoch,
       n.creation_time_utc AS newest_start_utc, n.state AS newest_state, n.result AS newest_result,
       f.result AS finished_result, f.end_time_utc AS finished_end_utc
FROM v__vm_replica_tasks g
LEFT JOIN LATERAL (
    SELECT t.creation_time_utc, t.state, t.result
    FROM replica_task_sessions t
    WHERE t.vm_display_name = g.vm_display_name
      AND ((g.untimed = 0 AND t.creation_time_utc = g.newest_start)
           OR (g.untimed > 0 AND t.creation_time_utc IS NULL))
      AND t.backup_server_uid IS NOT DISTINCT FROM g.backup_server_uid
    ORDER BY t.uid DESC
    LIMIT 1
) n ON TRUE
LEFT JOIN LATERAL (
    SELECT t.result, t.end_time_utc
    FROM replica_task_sessions t
    WHERE t.vm_display_name = g.vm_display_name
      AND ((g.untimed_finished = 0 AND t.creation_time_utc = g.newest_finished_start)
           OR (g.untimed_finished > 0 AND t.creation_time_utc IS NULL))
      AND t.state = 'Completed'
      AND t.backup_server_uid IS NOT DISTINCT FROM g.backup_server_uid
    ORDER BY t.uid DESC
    LIMIT 1
) f ON TRUE
