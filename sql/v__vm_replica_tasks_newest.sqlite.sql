-- Helper (SQLite): v__vm_replica_tasks with the end of the VM's last success as Unix epoch seconds, its
-- newest task (newest creation time, then uid) and its newest finished task (State Completed), as SQLite
-- orders them (a task without a creation time after every other): the task at the VM's newest creation
-- time (MAX, NULL when none has one), found through the index on (vm_display_name, creation_time_utc);
-- the newest finished task is the newest task when that one has finished, else looked up the same way
-- at the newest creation time of the VM's finished tasks. NULL columns when the VM has no such task.
CREATE VIEW v__vm_replica_tasks_newest AS
WITH newest AS (
    SELECT g.*,
           (SELECT t.uid FROM replica_task_sessions t
            WHERE t.vm_display_name = g.vm_display_name AND t.creation_time_utc IS g.newest_start
              AND t.backup_server_uid IS g.backup_server_uid
            ORDER BY t.uid DESC
            LIMIT 1) AS newest_uid
    FROM v__vm_replica_tasks g
),
finished AS (
    SELECT n.*, t.creation_time_utc AS newest_start_utc, t.state AS newest_state, t.result AS newest_result,
           CASE WHEN t.state = 'Completed' THEN t.uid
                ELSE (SELECT f.uid FROM replica_task_sessions f
                      WHERE f.vm_display_name = n.vm_display_name AND f.state = 'Completed'
                        AND f.backup_server_uid IS n.backup_server_uid
                        AND f.creation_time_utc IS (SELECT MAX(m.creation_time_utc) FROM replica_task_sessions m
                                                    WHERE m.vm_display_name = n.vm_display_name
                                                      AND m.state = 'Completed'
                                                      AND m.backup_server_uid IS n.backup_server_uid)
                      ORDER BY f.uid DESC
                      LIMIT 1)
           END AS finished_uid
    FROM newest n
    LEFT JOIN replica_task_sessions t ON t.uid = n.newest_uid
)
SELECT p.backup_server_uid, p.vm_display_name, p.tasks, p.last_success_utc,
       (julianday(p.last_success_utc) - 2440587.5) * 86400.0 AS last_success_epoch,
       p.newest_start_utc, p.newest_state, p.newest_result,
       f.result AS finished_result, f.end_time_utc AS finished_end_utc
FROM finished p
LEFT JOIN replica_task_sessions f ON f.uid = p.finished_uid
