-- Helper (SQLite): v__vm_replica_tasks with each VM's newest task (newest creation time, then uid) and
-- newest finished task (State Completed), as SQLite orders them (a task without a creation time after
-- every other): the task at the VM's newest creation time (MAX, NULL when none has one), found through
-- the index on (vm_display_name, creation_time_utc); NULL columns when the VM has no such task.
CREATE VIEW v__vm_replica_tasks_newest AS
WITH picked AS (
    SELECT g.*,
           (SELECT t.uid FROM replica_task_sessions t
            WHERE t.vm_display_name = g.vm_display_name AND t.creation_time_utc IS g.newest_start
              AND t.backup_server_uid IS g.backup_server_uid
            ORDER BY t.uid DESC
            LIMIT 1) AS newest_uid,
           (SELECT t.uid FROM replica_task_sessions t
            WHERE t.vm_display_name = g.vm_display_name AND t.creation_time_utc IS g.newest_finished_start
              AND t.state = 'Completed' AND t.backup_server_uid IS g.backup_server_uid
            ORDER BY t.uid DESC
            LIMIT 1) AS finished_uid
    FROM v__vm_replica_tasks g
)
SELECT p.backup_server_uid, p.vm_display_name, p.tasks, p.last_success_utc, p.last_success_epoch,
       n.creation_time_utc AS newest_start_utc, n.state AS newest_state, n.result AS newest_result,
       f.result AS finished_result, f.end_time_utc AS finished_end_utc
FROM picked p
LEFT JOIN replica_task_sessions n ON n.uid = p.newest_uid
LEFT JOIN replica_task_sessions f ON f.uid = p.finished_uid
