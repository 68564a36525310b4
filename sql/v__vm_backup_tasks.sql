-- Helper: backup task sessions (with a VmUid or a name) grouped by what decides the protected machine
-- they count for in v_vm_backup_status: backup server, vm_uid, vm_display_name and agent_job. Per group:
-- its tasks; untimed (tasks without a creation time); the newest creation time of all its tasks and of
-- its finished ones (State Completed), by which v__vm_backup_tasks_newest finds the newest tasks; whether any
-- finished; and the end of the newest-ending finished Success/Warning task. One pass over the tasks.
CREATE VIEW v__vm_backup_tasks AS
SELECT t.backup_server_uid, t.vm_uid, t.vm_display_name, t.agent_job,
       COUNT(*) AS tasks,
       COUNT(*) - COUNT(t.creation_time_utc) AS untimed,
       MAX(t.creation_time_utc) AS newest_start,
       SUM(CASE WHEN t.is_finished = 1 AND t.creation_time_utc IS NULL THEN 1 ELSE 0 END) AS untimed_finished,
       MAX(CASE WHEN t.is_finished = 1 THEN t.creation_time_utc END) AS newest_finished_start,
       MAX(t.is_finished) AS any_finished,
       MAX(CASE WHEN t.is_finished = 1 AND t.result IN ('Success', 'Warning') THEN t.end_time_utc END)
           AS last_success_utc
FROM v__backup_task_sessions t
WHERE t.vm_uid IS NOT NULL OR t.vm_display_name IS NOT NULL
GROUP BY t.backup_server_uid, t.vm_uid, t.vm_display_name, t.agent_job
