-- Helper (SQLite): v__vm_backup_tasks with each group's newest task (newest creation time, then uid) and
-- newest finished task (State Completed), as SQLite orders them (a task without a creation time after
-- every other): the task at the group's newest creation time (MAX, NULL when none has one), found
-- through the index on (vm_uid, creation_time_utc) or on creation_time_utc; the newest finished task is
-- the newest task when that one has finished, else looked up the same way at the newest finished
-- creation time. NULL columns when the group has no such task.
CREATE VIEW v__vm_backup_tasks_newest AS
WITH newest AS (
    SELECT g.*,
           (SELECT t.uid FROM v__backup_task_sessions t
            WHERE t.creation_time_utc IS g.newest_start
              AND t.backup_server_uid IS g.backup_server_uid AND t.vm_uid IS g.vm_uid
              AND t.vm_display_name IS g.vm_display_name AND t.agent_job = g.agent_job
            ORDER BY t.uid DESC
            LIMIT 1) AS newest_uid
    FROM v__vm_backup_tasks g
),
finished AS (
    SELECT n.*, t.creation_time_utc AS newest_start_utc, t.state AS newest_state, t.result AS newest_result,
           t.job_session_uid AS newest_session_uid,
           CASE WHEN t.is_finished = 1 THEN t.uid
                ELSE (SELECT f.uid FROM v__backup_task_sessions f
                      WHERE f.creation_time_utc IS n.newest_finished_start AND f.is_finished = 1
                        AND f.backup_server_uid IS n.backup_server_uid AND f.vm_uid IS n.vm_uid
                        AND f.vm_display_name IS n.vm_display_name AND f.agent_job = n.agent_job
                      ORDER BY f.uid DESC
                      LIMIT 1)
           END AS finished_uid
    FROM newest n
    LEFT JOIN v__backup_task_sessions t ON t.uid = n.newest_uid
)
SELECT p.backup_server_uid, p.vm_uid, p.vm_display_name, p.agent_job, p.tasks, p.any_finished,
       p.last_success_utc,
       p.newest_uid, p.newest_start_utc, p.newest_state, p.newest_result, p.newest_session_uid,
       f.uid AS finished_uid, f.creation_time_utc AS finished_start_utc, f.result AS finished_result,
       f.reason AS finished_reason, f.end_time_utc AS finished_end_utc, f.end_epoch AS finished_end_epoch
FROM finished p
LEFT JOIN v__backup_task_sessions f ON f.uid = p.finished_uid
