-- Per repository per UTC day on which a run read it (placeholders left out): its capacity and free
-- space as the day's last observation found them, and free space in percent of capacity (NULL when EM
-- does not know the capacity, reported as -1). The trend behind v_repository_capacity, for charts.
-- order: day_utc DESC, repository_name, repository_uid
CREATE VIEW v_repository_space_daily AS
WITH ranked AS (
    SELECT s.*,
           ROW_NUMBER() OVER (PARTITION BY s.repository_uid, s.observed_day_utc
                              ORDER BY s.observed_epoch DESC, s.run_id DESC) AS rn
    FROM v__repository_space s
)
SELECT k.repository_uid,
       r.name AS repository_name,
       r.backup_server_uid,
       b.name AS backup_server_name,
       k.observed_day_utc AS day_utc,
       k.observed_at AS observed_utc,
       k.capacity AS capacity_bytes,
       k.free_space AS free_bytes,
       CASE WHEN k.capacity > 0 AND k.free_space IS NOT NULL
            THEN CAST(ROUND(CAST(100.0 * k.free_space / k.capacity AS NUMERIC), 2) AS DOUBLE PRECISION)
       END AS free_pct
FROM ranked k
JOIN repositories r ON r.uid = k.repository_uid
LEFT JOIN backup_servers b ON b.uid = r.backup_server_uid
WHERE k.rn = 1 AND NOT r.placeholder
