-- Per backup job (on its backup server) per UTC day the run started, over the logical runs of
-- v_backup_job_runs (automatic retries folded in): runs by outcome of their last attempt — succeeded,
-- warnings, failed, running (last attempt not finished, whatever its Result says), idle (last attempt
-- in State Idle: a backup copy session waiting for new restore points) and other (finished with a
-- Result that is none of Success/Warning/Failed, e.g. a value newer than this tool: shown, never
-- counted as a success) —, recovered (first attempt Failed, final outcome Success or Warning), the
-- sessions they took, and success_rate = (succeeded + warnings) / finished runs (other included; NULL
-- when none finished). Placeholder sessions are left out.
-- order: day_utc DESC, job_name, job_uid
CREATE VIEW v_backup_job_daily AS
SELECT d.job_uid, d.job_name, d.job_type, d.backup_server_uid, b.name AS backup_server_name, d.day_utc,
       d.runs, d.attempts, d.succeeded, d.warnings, d.failed, d.recovered, d.running, d.idle, d.other,
       CASE WHEN d.runs - d.running - d.idle = 0 THEN NULL
            ELSE CAST(ROUND(CAST(CAST(d.succeeded + d.warnings AS DOUBLE PRECISION)
                                 / (d.runs - d.running - d.idle) AS NUMERIC), 4) AS DOUBLE PRECISION)
       END AS success_rate
FROM (
    SELECT r.backup_server_uid, r.job_uid, r.day_utc,
           MAX(r.job_name) AS job_name,
           MAX(r.job_type) AS job_type,
           COUNT(*) AS runs,
           CAST(SUM(r.attempts) AS BIGINT) AS attempts,
           SUM(CASE WHEN r.outcome = 'Success' THEN 1 ELSE 0 END) AS succeeded,
           SUM(CASE WHEN r.outcome = 'Warning' THEN 1 ELSE 0 END) AS warnings,
           SUM(CASE WHEN r.outcome = 'Failed' THEN 1 ELSE 0 END) AS failed,
           SUM(r.recovered) AS recovered,
           SUM(CASE WHEN r.outcome = 'running' THEN 1 ELSE 0 END) AS running,
           SUM(CASE WHEN r.outcome = 'idle' THEN 1 ELSE 0 END) AS idle,
           SUM(CASE WHEN r.outcome IN ('Success', 'Warning', 'Failed', 'running', 'idle') THEN 0 ELSE 1 END) AS other
    FROM v__backup_runs r
    GROUP BY r.backup_server_uid, r.job_uid, r.day_utc
) d
LEFT JOIN backup_servers b ON b.uid = d.backup_server_uid
