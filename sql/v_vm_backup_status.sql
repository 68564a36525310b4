-- Per protected machine on its backup server, VMs and agent computers alike (kind 'vm' or 'agent'): the
-- backup twin of v_vm_replica_status. A VM is keyed by its hierarchy reference (task VmUid = restore
-- point HierarchyObjRef) when known; on servers that send none (before v10) by its name, unless that name
-- maps to exactly one reference on the same server, in which case it joins that reference's row. An
-- agent computer is keyed by its computer name (keyed_by 'computer_name'): its task sessions name it in
-- VmDisplayName, under an agent job session (AgentBackup, or AgentManagement with a parent session),
-- and its restore points are agent restore points (EM's AgentRestorePoint, not VmRestorePoint) named
-- `<computer>@<time>`; a task without VmUid whose name is that of a computer with agent restore points
-- on the same server is the computer's too. Per machine: its newest restore point that EM still lists
-- (deleted_at NULL: points removed by retention are not counted) and its age in hours; its newest task
-- (state and result as sent), the newest finished task (State Completed) with its result and reason,
-- and the end of the newest finished Success/Warning task; and the RPO check against etl_settings
-- 'backup_rpo_hours' (default 24 when the row is absent). "Now" is the database's current time when
-- the query runs. rpo_status: breach = no current restore point within the RPO and the newest finished
-- task did not end Success or Warning within it either (a machine whose newest task succeeded within
-- the RPO is never a breach for want of a point); warning = no current point within the RPO although
-- the newest task succeeded within it (its point is not in the warehouse), or the newest point is
-- older than half the RPO, or the newest finished task ended with any Result other than Success
-- (Warning, Failed, or a value EM did not document); ok otherwise.
-- order: rpo_breach DESC, backup_server_name, vm_display_name, vm_key
CREATE VIEW v_vm_backup_status AS
WITH agent_names AS (
    SELECT DISTINCT backup_server_uid, computer_name
    FROM agent_restore_points
    WHERE NOT placeholder AND computer_name IS NOT NULL
),
task_groups AS (
    -- the task groups of v__vm_backup_tasks_newest (all tasks of a group count for one machine), each
    -- with its kind
    SELECT g.*,
           CASE WHEN g.vm_display_name IS NOT NULL
                     AND (g.agent_job = 1
                          OR (g.vm_uid IS NULL
                              AND EXISTS (SELECT 1 FROM agent_names a
                                          WHERE a.computer_name = g.vm_display_name
                                            AND COALESCE(a.backup_server_uid, '')
                                                = COALESCE(g.backup_server_uid, ''))))
                THEN 'agent' ELSE 'vm'
           END AS kind
    FROM v__vm_backup_tasks_newest g
),
point_groups AS (
    -- VM restore points EM still lists, by name, hierarchy reference and backup server: one pass
    SELECT vm_label, hierarchy_obj_ref, backup_server_uid,
           COUNT(*) AS restore_points,
           MAX(creation_time_utc) AS newest_point_utc,
           MAX(created_epoch) AS newest_point_epoch
    FROM v__vm_restore_points
    WHERE hierarchy_obj_ref IS NOT NULL OR vm_label IS NOT NULL
    GROUP BY vm_label, hierarchy_obj_ref, backup_server_uid
),
unreferenced AS (
    -- the names by which a VM's tasks or restore points without a hierarchy reference go
    SELECT backup_server_uid, vm_display_name AS vm_name
    FROM task_groups
    WHERE kind = 'vm' AND vm_uid IS NULL
    UNION
    SELECT backup_server_uid, vm_label
    FROM point_groups
    WHERE hierarchy_obj_ref IS NULL
),
named AS (
    -- the references that bear those names on the same backup server
    SELECT k.backup_server_uid, k.vm_uid AS ref, k.vm_display_name AS vm_name
    FROM task_groups k
    WHERE k.kind = 'vm' AND k.vm_uid IS NOT NULL
      AND EXISTS (SELECT 1 FROM unreferenced u
                  WHERE u.vm_name = k.vm_display_name
                    AND COALESCE(u.backup_server_uid, '') = COALESCE(k.backup_server_uid, ''))
    UNION
    SELECT p.backup_server_uid, p.hierarchy_obj_ref, p.vm_label
    FROM point_groups p
    WHERE p.hierarchy_obj_ref IS NOT NULL
      AND EXISTS (SELECT 1 FROM unreferenced u
                  WHERE u.vm_name = p.vm_label
                    AND COALESCE(u.backup_server_uid, '') = COALESCE(p.backup_server_uid, ''))
),
name_refs AS (
    SELECT backup_server_uid, vm_name, MIN(ref) AS ref
    FROM named
    GROUP BY backup_server_uid, vm_name
    HAVING COUNT(DISTINCT ref) = 1
),
task_parts AS (
    -- each task group with the machine it counts for; rn_any = 1 on the group holding the machine's
    -- newest task, rn_finished = 1 on the one holding its newest finished task (creation time, then
    -- uid, descending, as over the tasks themselves)
    SELECT k.*,
           CASE WHEN k.kind = 'agent' THEN 'computer_name' WHEN k.vm_ref IS NULL THEN 'name' ELSE 'vm_uid' END
               AS keyed_by,
           COALESCE(k.vm_ref, k.vm_display_name) AS vm_key,
           ROW_NUMBER() OVER (PARTITION BY k.backup_server_uid, k.kind, k.vm_ref,
                                           COALESCE(k.vm_ref, k.vm_display_name)
                              ORDER BY k.newest_start_utc DESC, k.newest_uid DESC) AS rn_any,
           ROW_NUMBER() OVER (PARTITION BY k.backup_server_uid, k.kind, k.vm_ref,
                                           COALESCE(k.vm_ref, k.vm_display_name)
                              ORDER BY CASE WHEN k.finished_uid IS NULL THEN 1 ELSE 0 END,
                                       k.finished_start_utc DESC, k.finished_uid DESC) AS rn_finished
    FROM (
        SELECT g.*,
               CASE WHEN g.kind = 'agent' THEN NULL ELSE COALESCE(g.vm_uid, n.ref) END AS vm_ref
        FROM task_groups g
        LEFT JOIN name_refs n ON g.kind = 'vm' AND g.vm_uid IS NULL AND n.vm_name = g.vm_display_name
                             AND COALESCE(n.backup_server_uid, '') = COALESCE(g.backup_server_uid, '')
    ) k
),
point_parts AS (
    SELECT p.*, COALESCE(p.hierarchy_obj_ref, n.ref) AS vm_ref
    FROM point_groups p
    LEFT JOIN name_refs n ON p.hierarchy_obj_ref IS NULL AND n.vm_name = p.vm_label
                         AND COALESCE(n.backup_server_uid, '') = COALESCE(p.backup_server_uid, '')
),
parts AS (
    -- per machine: what its tasks say, and what its restore points (VM or agent) say
    SELECT backup_server_uid, kind, keyed_by, vm_key,
           CAST(SUM(tasks) AS BIGINT) AS tasks,
           MAX(CASE WHEN rn_any = 1 THEN vm_display_name END) AS task_name,
           MAX(CASE WHEN rn_any = 1 THEN newest_session_uid END) AS last_session_uid,
           MAX(CASE WHEN rn_any = 1 THEN newest_start_utc END) AS last_task_start_utc,
           MAX(CASE WHEN rn_any = 1 THEN newest_state END) AS last_task_state,
           MAX(CASE WHEN rn_any = 1 THEN newest_result END) AS last_task_result,
           MAX(any_finished) AS any_finished,
           MAX(CASE WHEN rn_finished = 1 THEN finished_result END) AS last_result,
           MAX(CASE WHEN rn_finished = 1 THEN finished_reason END) AS last_reason,
           MAX(CASE WHEN rn_finished = 1 THEN finished_end_utc END) AS last_result_utc,
           MAX(CASE WHEN rn_finished = 1 THEN finished_end_epoch END) AS last_result_epoch,
           MAX(last_success_utc) AS last_success_utc,
           NULL AS restore_points, NULL AS point_name, NULL AS newest_point_utc, NULL AS newest_point_epoch
    FROM task_parts
    GROUP BY backup_server_uid, kind, keyed_by, vm_key
    UNION ALL
    SELECT backup_server_uid, 'vm',
           CASE WHEN vm_ref IS NULL THEN 'name' ELSE 'vm_uid' END,
           COALESCE(vm_ref, vm_label),
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           restore_points, vm_label, newest_point_utc, newest_point_epoch
    FROM point_parts
    UNION ALL
    SELECT backup_server_uid, 'agent', 'computer_name', computer_name,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           COUNT(*), MAX(computer_name), MAX(creation_time_utc), MAX(created_epoch)
    FROM v__agent_restore_points
    WHERE computer_name IS NOT NULL
    GROUP BY backup_server_uid, computer_name
),
machines AS (
    SELECT backup_server_uid, kind, keyed_by, vm_key,
           MAX(tasks) AS tasks, MAX(task_name) AS task_name, MAX(last_session_uid) AS last_session_uid,
           MAX(last_task_start_utc) AS last_task_start_utc, MAX(last_task_state) AS last_task_state,
           MAX(last_task_result) AS last_task_result, MAX(any_finished) AS any_finished,
           MAX(last_result) AS last_result, MAX(last_reason) AS last_reason,
           MAX(last_result_utc) AS last_result_utc, MAX(last_result_epoch) AS last_result_epoch,
           MAX(last_success_utc) AS last_success_utc,
           CAST(SUM(restore_points) AS BIGINT) AS restore_points, MAX(point_name) AS point_name,
           MAX(newest_point_utc) AS newest_point_utc, MAX(newest_point_epoch) AS newest_point_epoch
    FROM parts
    GROUP BY backup_server_uid, kind, keyed_by, vm_key
),
settings AS (
    SELECT COALESCE((SELECT CAST(value AS DOUBLE PRECISION) FROM etl_settings WHERE key = 'backup_rpo_hours'),
                    24.0) AS rpo_hours
),
checked AS (
    SELECT m.backup_server_uid, m.kind, m.keyed_by, m.vm_key,
           COALESCE(m.task_name, m.point_name) AS vm_display_name,
           COALESCE(m.tasks, 0) AS tasks,
           m.last_task_start_utc, m.last_task_state, m.last_task_result, m.any_finished,
           m.last_result, m.last_reason, m.last_result_utc, m.last_success_utc, m.last_session_uid,
           COALESCE(m.restore_points, 0) AS restore_points, m.newest_point_utc, st.rpo_hours,
           (c.now_epoch - m.newest_point_epoch) / 3600.0 AS age_raw,
           CASE WHEN m.last_result IN ('Success', 'Warning')
                     AND (c.now_epoch - m.last_result_epoch) / 3600.0 <= st.rpo_hours
                THEN 1 ELSE 0
           END AS task_in_rpo
    FROM machines m
    CROSS JOIN v__clock c
    CROSS JOIN settings st
),
judged AS (
    SELECT k.*,
           CASE WHEN k.age_raw IS NOT NULL AND k.age_raw <= k.rpo_hours THEN 1 ELSE 0 END AS point_in_rpo
    FROM checked k
)
SELECT k.backup_server_uid,
       b.name AS backup_server_name,
       k.kind,
       k.vm_key,
       k.keyed_by,
       CASE WHEN k.keyed_by = 'vm_uid' THEN k.vm_key END AS vm_uid,
       k.vm_display_name,
       k.tasks,
       k.last_task_start_utc,
       k.last_task_state,
       k.last_task_result,
       k.last_result,
       k.last_reason,
       k.last_result_utc,
       k.last_success_utc,
       COALESCE(ps.job_uid, s.job_uid) AS last_job_uid,
       COALESCE(ps.job_name, s.job_name) AS last_job_name,
       k.restore_points,
       k.newest_point_utc,
       CAST(ROUND(CAST(k.age_raw AS NUMERIC), 2) AS DOUBLE PRECISION) AS point_age_hours,
       k.rpo_hours,
       CASE WHEN k.point_in_rpo = 0 AND k.task_in_rpo = 0 THEN 1 ELSE 0 END AS rpo_breach,
       CASE WHEN k.point_in_rpo = 0 AND k.task_in_rpo = 0 THEN 'breach'
            WHEN k.point_in_rpo = 0
                 OR k.age_raw > k.rpo_hours / 2
                 OR (k.any_finished = 1 AND (k.last_result IS NULL OR k.last_result <> 'Success')) THEN 'warning'
            ELSE 'ok'
       END AS rpo_status
FROM judged k
LEFT JOIN backup_servers b ON b.uid = k.backup_server_uid
LEFT JOIN backup_job_sessions s ON s.uid = k.last_session_uid
LEFT JOIN backup_job_sessions ps ON ps.uid = s.parent_session_uid AND NOT ps.placeholder
