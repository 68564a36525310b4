-- Per replication job per UTC day, with automatic retries folded in. A run group is one scheduled
-- (non-retry) session plus the retry sessions of the same job that start after it and before the
-- job's next non-retry session; it belongs to the UTC day its first session started, and its final
-- outcome is that of its latest session: "running" until that session has finished (State Stopped,
-- whatever its Result says), then its Result. runs/successes/warnings/failures/other/running count run
-- groups by final outcome (other: finished with a Result that is none of Success/Warning/Failed, shown
-- as EM sent it and never counted as a success); recovered counts groups whose first session finished
-- Failed and whose final outcome is Success or Warning; success_rate = (successes + warnings) / finished
-- groups (other included). final_result is the final outcome of the day's latest group ('None' while
-- it runs). Placeholder sessions are left out.
-- order: day_utc DESC, job_name, job_uid
CREATE VIEW v_replica_job_daily AS
WITH ordered AS (
    SELECT s.job_uid, s.uid, s.creation_time_utc, s.start_day_utc, s.result, s.is_retry, s.is_finished,
           FIRST_VALUE(s.job_name) OVER (PARTITION BY s.job_uid
                                         ORDER BY s.creation_time_utc DESC, s.uid DESC) AS latest_job_name,
           FIRST_VALUE(s.backup_server_uid) OVER (PARTITION BY s.job_uid
                                                  ORDER BY s.creation_time_utc DESC, s.uid DESC) AS latest_server,
           SUM(1 - s.is_retry) OVER (PARTITION BY s.job_uid ORDER BY s.creation_time_utc, s.uid
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS grp
    FROM v__job_sessions s
    WHERE s.job_uid IS NOT NULL AND s.creation_time_utc IS NOT NULL
),
numbered AS (
    SELECT o.*,
           ROW_NUMBER() OVER (PARTITION BY o.job_uid, o.grp ORDER BY o.creation_time_utc, o.uid) AS rn_first,
           ROW_NUMBER() OVER (PARTITION BY o.job_uid, o.grp
                              ORDER BY o.creation_time_utc DESC, o.uid DESC) AS rn_last
    FROM ordered o
),
run_groups AS (
    SELECT job_uid, grp,
           MAX(latest_job_name) AS job_name,
           MAX(latest_server) AS backup_server_uid,
           MAX(CASE WHEN rn_first = 1 THEN start_day_utc END) AS day_utc,
           MAX(CASE WHEN rn_first = 1 THEN creation_time_utc END) AS group_start_utc,
           MAX(CASE WHEN rn_first = 1 AND is_finished = 1 THEN result END) AS first_result,
           MAX(CASE WHEN rn_last = 1 THEN is_finished END) AS finished,
           MAX(CASE WHEN rn_last = 1 THEN result END) AS last_result,
           COUNT(*) AS sessions,
           SUM(is_retry) AS retries
    FROM numbered
    GROUP BY job_uid, grp
),
outcomes AS (
    SELECT g.*,
           CASE WHEN g.finished = 1 THEN COALESCE(g.last_result, 'None') ELSE 'running' END AS outcome,
           ROW_NUMBER() OVER (PARTITION BY g.job_uid, g.day_utc ORDER BY g.group_start_utc DESC) AS rn_day_last
    FROM run_groups g
),
daily AS (
    SELECT job_uid,
           MAX(job_name) AS job_name,
           MAX(backup_server_uid) AS backup_server_uid,
           day_utc,
           COUNT(*) AS runs,
           CAST(SUM(sessions) AS BIGINT) AS sessions,
           CAST(SUM(retries) AS BIGINT) AS retries,
           SUM(CASE WHEN outcome = 'Success' THEN 1 ELSE 0 END) AS successes,
           SUM(CASE WHEN outcome = 'Warning' THEN 1 ELSE 0 END) AS warnings,
           SUM(CASE WHEN outcome = 'Failed' THEN 1 ELSE 0 END) AS failures,
           SUM(CASE WHEN first_result = 'Failed' AND outcome IN ('Success', 'Warning') THEN 1 ELSE 0 END)
               AS recovered,
           SUM(CASE WHEN outcome = 'running' THEN 1 ELSE 0 END) AS running,
           SUM(CASE WHEN outcome IN ('Success', 'Warning', 'Failed', 'running') THEN 0 ELSE 1 END) AS other,
           MAX(CASE WHEN rn_day_last = 1 THEN (CASE WHEN finished = 1 THEN last_result ELSE 'None' END) END)
               AS final_result
    FROM outcomes
    GROUP BY job_uid, day_utc
)
SELECT d.job_uid, d.job_name, d.backup_server_uid, b.name AS backup_server_name, d.day_utc,
       d.runs, d.sessions, d.retries, d.successes, d.warnings, d.failures, d.recovered, d.running,
       d.other, d.final_result,
       CASE WHEN d.runs - d.running = 0 THEN NULL
            ELSE CAST(ROUND(CAST(CAST(d.successes + d.warnings AS DOUBLE PRECISION)
                                 / (d.runs - d.running) AS NUMERIC), 4) AS DOUBLE PRECISION)
       END AS success_rate
FROM daily d
LEFT JOIN backup_servers b ON b.uid = d.backup_server_uid
