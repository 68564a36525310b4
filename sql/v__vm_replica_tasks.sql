-- Helper: replication task sessions (with a name) per VM: vm_display_name on its backup server, as
-- v_vm_replica_status keys a VM. Per VM: its tasks; untimed (tasks without a creation time); the newest
-- creation time of all its tasks and of its finished ones (State Completed), by which
-- v__vm_replica_tasks_newest finds the newest tasks; and the end of the newest-ending finished
-- Success/Warning task. One pass over the tasks.
CREATE VIEW v__vm_replica_tasks AS
SELECT t.backup_server_uid, t.vm_display_name,
       COUNT(*) AS tasks,
       COUNT(*) - COUNT(t.creation_time_utc) AS untimed,
       MAX(t.creation_time_utc) AS newest_start,
       SUM(CASE WHEN t.is_finished = 1 AND t.creation_time_utc IS NULL THEN 1 ELSE 0 END) AS untimed_finished,
       MAX(CASE WHEN t.is_finished = 1 THEN t.creation_time_utc END) AS newest_finished_start,
       MAX(CASE WHEN t.is_finished = 1 AND t.result IN ('Success', 'Warning') THEN t.end_time_utc END)
           AS last_success_utc,
       MAX(CASE WHEN t.is_finished = 1 AND t.result IN ('Success', 'Warning') THEN t.end_epoch END)
           AS last_success_epoch
FROM v__task_sessions t
WHERE t.vm_display_name || '' IS NOT NULL  -- not "vm_display_name IS NOT NULL": SQLite would read every row through an index
GROUP BY t.backup_server_uid, t.vm_display_name
