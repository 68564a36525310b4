-- Helper (PostgreSQL): backup task sessions with instants as Unix epoch seconds, the UTC day of the end,
-- is_finished (1 when State is Completed: EM's only sign that a task has ended) and agent_job (1 when an agent
-- job's session ran the task: AgentBackup, AgentManagement, or a per-computer session under a parent).
CREATE VIEW v__backup_task_sessions AS
SELECT t.uid, t.job_session_uid, t.backup_server_uid, t.vm_restore_point_uid, t.vm_restore_point_link,
       t.name, t.vm_display_name, t.vm_uid, t.creation_time_utc, t.end_time_utc, t.state, t.result,
       t.reason, t.total_size,
       CASE WHEN t.state = 'Completed' THEN 1 ELSE 0 END AS is_finished,
       CASE WHEN t.job_session_uid IN (SELECT s.uid FROM backup_job_sessions s
                                       WHERE s.job_type IN ('AgentBackup', 'AgentManagement')
                                          OR s.parent_session_uid IS NOT NULL)
            THEN 1 ELSE 0
       END AS agent_job,
       CAST(EXTRACT(EPOCH FROM t.creation_time_utc) AS DOUBLE PRECISION) AS start_epoch,
       CAST(EXTRACT(EPOCH FROM t.end_time_utc) AS DOUBLE PRECISION) AS end_epoch,
       CAST(t.end_time_utc AT TIME ZONE 'UTC' AS DATE) AS end_day_utc
FROM backup_task_sessions t
