-- Helper: replication task sessions (with a name) per VM: vm_display_name on its backup server, as
-- v_vm_replica_status keys a VM. Per VM: its tasks; untimed (tasks without a creation time) and the
-- newest creation time, by which v__vm_replica_tasks_newest finds the newest task; and the end of the
-- newest-ending finished (State Completed) Success/Warning task. One pass over the tasks.
CREATE VIEW v__vm_replica_tasks AS
SELECT t.backup_server_uid, t.vm_display_name,
       COUNT(*) AS tasks,
       COUNT(*) - COUNT(t.creation_time_utc) AS untimed,
       MAX(t.creation_time_utc) AS newest_start,
       MAX(CASE WHEN t.state = 'Completed' AND t.result IN ('Success', 'Warning') THEN t.end_time_utc END)
           AS last_success_utc
FROM replica_task_sessions t
WHERE t.vm_display_name || '' IS NOT NULL  -- not "vm_display_name IS NOT NULL": SQLite would read every row through an index
GROUP BY t.backup_server_uid, t.vm_display_name
