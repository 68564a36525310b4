-- Helper (PostgreSQL): v__vm_backup_tasks with each group's newest task (newest creation time, then uid)
-- and newest finished task (State Completed), as PostgreSQL orders them (a task without a creation time
-- before every other): the task at the group's newest creation time, or one without a creation time
-- when the group has such a task, found through the index on creation_time_utc; the newest finished
-- task is the newest task when that one has finished, else looked up the same way. NULL columns when
-- the group has no such task.
CREATE VIEW v__vm_backup_tasks_newest AS
SELECT g.backup_server_uid, g.vm_uid, g.vm_display_name, g.agent_job, g.tasks, g.any_finished,
       g.last_success_utc,
       n.uid AS newest_uid, n.creation_time_utc AS newest_start_utc, n.state AS newest_state,
       n.result AS newest_result, n.job_session_uid AS newest_session_uid,
       CASE WHEN n.is_finished = 1 THEN n.uid ELSE f.uid END AS finished_uid,
       CASE WHEN n.is_finished = 1 THEN n.creation_time_utc ELSE f.creation_time_utc END AS finished_start_utc,
       CASE WHEN n.is_finished = 1 THEN n.result ELSE f.result END AS finished_result,
       CASE WHEN n.is_finished = 1 THEN n.reason ELSE f.reason END AS finished_reason,
       CASE WHEN n.is_finished = 1 THEN n.end_time_utc ELSE f.end_time_utc END AS finished_end_utc,
       CASE WHEN n.is_finished = 1 THEN n.end_epoch ELSE f.end_epoch END AS finished_end_epoch
FROM v__vm_backup_tasks g
LEFT JOIN LATERAL (
    SELECT t.uid, t.creation_time_utc, t.state, t.result, t.job_session_uid, t.is_finished, t.reason,
           t.end_time_utc, t.end_epoch
    FROM v__backup_task_sessions t
    WHERE t.creation_time_utc = g.newest_start AND g.untimed = 0
      AND t.backup_server_uid IS NOT DISTINCT FROM g.backup_server_uid
      AND t.vm_uid IS NOT DISTINCT FROM g.vm_uid
      AND t.vm_display_name IS NOT DISTINCT FROM g.vm_display_name
      AND t.agent_job = g.agent_job
    UNION ALL
    SELECT t.uid, t.creation_time_utc, t.state, t.result, t.job_session_uid, t.is_finished, t.reason,
           t.end_time_utc, t.end_epoch
    FROM v__backup_task_sessions t
    WHERE t.creation_time_utc IS NULL AND g.untimed > 0
      AND t.backup_server_uid IS NOT DISTINCT FROM g.backup_server_uid
      AND t.vm_uid IS NOT DISTINCT FROM g.vm_uid
      AND t.vm_display_name IS NOT DISTINCT FROM g.vm_display_name
      AND t.agent_job = g.agent_job
    ORDER BY uid DESC
    LIMIT 1
) n ON TRUE
LEFT JOIN LATERAL (
    SELECT t.uid, t.creation_time_utc, t.result, t.reason, t.end_time_utc, t.end_epoch
    FROM v__backup_task_sessions t
    WHERE t.creation_time_utc = g.newest_finished_start AND g.untimed_finished = 0
      AND n.is_finished IS DISTINCT FROM 1 AND t.is_finished = 1
      AND t.backup_server_uid IS NOT DISTINCT FROM g.backup_server_uid
      AND t.vm_uid IS NOT DISTINCT FROM g.vm_uid
      AND t.vm_display_name IS NOT DISTINCT FROM g.vm_display_name
      AND t.agent_job = g.agent_job
    UNION ALL
    SELECT t.uid, t.creation_time_utc, t.result, t.reason, t.end_time_utc, t.end_epoch
    FROM v__backup_task_sessions t
    WHERE t.creation_time_utc IS NULL AND g.untimed_finished > 0
      AND n.is_finished IS DISTINCT FROM 1 AND t.is_finished = 1
      AND t.backup_server_uid IS NOT DISTINCT FROM g.backup_server_uid
      AND t.vm_uid IS NOT DISTINCT FROM g.vm_uid
      AND t.vm_display_name IS NOT DISTINCT FROM g.vm_display_name
      AND t.agent_job = g.agent_job
    ORDER BY uid DESC
    LIMIT 1
) f ON TRUE
