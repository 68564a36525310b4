-- Per VM (vm_display_name on its backup server, as seen in task sessions): its newest task, its
-- newest finished result, the end of its newest Success/Warning task, its newest replica point, and
-- the RPO check against etl_settings 'rpo_hours' (default 24). A task counts once it has finished
-- (State Completed): a task still running is never a success, whatever its Result says. "Now" is the
-- database's current time (CURRENT_TIMESTAMP) when the query runs. rpo_status: red = rpo_breach (no
-- success within the RPO, or never); amber = last success older than half the RPO, or the newest
-- finished task ended with any Result other than Success (Warning, Failed, or a value EM did not
-- document); green otherwise. Replica points EM no longer lists (deleted_at set) are not counted.
-- order: rpo_breach DESC, backup_server_name, vm_display_name
CREATE VIEW v_vm_replica_status AS
WITH points AS (
    SELECT backup_server_uid, vm_display_name,
           COUNT(*) AS replica_points,
           MAX(creation_time_utc) AS newest_point_utc
    FROM vm_replica_points
    WHERE NOT placeholder AND deleted_at IS NULL
      AND vm_display_name || '' IS NOT NULL  -- a scan: SQLite would read every row through an index
    GROUP BY backup_server_uid, vm_display_name
),
settings AS (
    SELECT COALESCE((SELECT CAST(value AS DOUBLE PRECISION) FROM etl_settings WHERE key = 'rpo_hours'),
                    24.0) AS rpo_hours
),
checked AS (
    SELECT v.*, p.replica_points, p.newest_point_utc, st.rpo_hours,
           (c.now_epoch - v.last_success_epoch) / 3600.0 AS hours_raw
    FROM v__vm_replica_tasks_newest v
    CROSS JOIN v__clock c
    CROSS JOIN settings st
    LEFT JOIN points p ON p.vm_display_name = v.vm_display_name
                      AND (p.backup_server_uid = v.backup_server_uid
                           OR (p.backup_server_uid IS NULL AND v.backup_server_uid IS NULL))
)
SELECT k.backup_server_uid,
       b.name AS backup_server_name,
       k.vm_display_name,
       k.tasks,
       k.newest_start_utc AS last_task_start_utc,
       k.newest_state AS last_task_state,
       k.newest_result AS last_task_result,
       k.finished_result AS last_result,
       k.finished_end_utc AS last_result_utc,
       k.last_success_utc,
       COALESCE(k.replica_points, 0) AS replica_points,
       k.newest_point_utc,
       k.rpo_hours,
       CAST(ROUND(CAST(k.hours_raw AS NUMERIC), 2) AS DOUBLE PRECISION) AS hours_since_success,
       CASE WHEN k.hours_raw IS NULL OR k.hours_raw > k.rpo_hours THEN 1 ELSE 0 END AS rpo_breach,
       CASE WHEN k.hours_raw IS NULL OR k.hours_raw > k.rpo_hours THEN 'red'
            WHEN k.hours_raw > k.rpo_hours / 2
                 OR k.finished_result IS NULL OR k.finished_result <> 'Success' THEN 'amber'
            ELSE 'green'
       END AS rpo_status
FROM checked k
LEFT JOIN backup_servers b ON b.uid = k.backup_server_uid
