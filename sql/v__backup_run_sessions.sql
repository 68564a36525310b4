-- Helper: every backup job session that belongs to a logical run, with the run it belongs to. A run is
-- a scheduled (non-retry) session plus the retry sessions (is_retry) of the same job on the same backup
-- server that start after it and before the job's next non-retry session (EM links a retry to nothing:
-- em-backup-side.md §1 quirk 4); retries with no earlier non-retry session in the warehouse form a run
-- of their own. attempt numbers the run's sessions from 1 in start order. Agent per-computer sessions
-- (parent_session_uid set: AgentManagement under their AgentBackup session) are not runs of their own:
-- they belong to their parent's run with the parent's attempt (is_child = 1). Placeholder sessions,
-- sessions without a job or a start time, and children of a placeholder session are left out.
CREATE VIEW v__backup_run_sessions AS
WITH top AS (
    SELECT s.uid, s.backup_server_uid, s.job_uid, s.creation_time_utc, s.is_retry,
           SUM(1 - s.is_retry) OVER (PARTITION BY s.backup_server_uid, s.job_uid
                                     ORDER BY s.creation_time_utc, s.is_retry, s.uid
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS grp
    FROM v__backup_job_sessions s
    WHERE s.parent_session_uid IS NULL AND s.job_uid IS NOT NULL AND s.creation_time_utc IS NOT NULL
),
keyed AS (
    SELECT t.uid,
           FIRST_VALUE(t.uid) OVER (PARTITION BY t.backup_server_uid, t.job_uid, t.grp
                                    ORDER BY t.creation_time_utc, t.is_retry, t.uid) AS run_uid,
           ROW_NUMBER() OVER (PARTITION BY t.backup_server_uid, t.job_uid, t.grp
                              ORDER BY t.creation_time_utc, t.is_retry, t.uid) AS attempt
    FROM top t
)
SELECT k.run_uid, k.uid AS session_uid, k.attempt, 0 AS is_child
FROM keyed k
UNION ALL
SELECT k.run_uid, c.uid AS session_uid, k.attempt, 1 AS is_child
FROM v__backup_job_sessions c
JOIN keyed k ON k.uid = c.parent_session_uid
