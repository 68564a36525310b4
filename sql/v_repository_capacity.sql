-- Per backup repository (placeholders, known only from a link, left out): capacity and free space as
-- last read, bytes used, free space in percent of capacity, and how free space changed over 7 and 30
-- days. Capacity is NULL when EM does not know it (EM reports -1, e.g. for some cloud, object storage or
-- deduplicating repositories): then used_bytes, free_pct and low_free are NULL too; nothing is ever
-- divided by an unknown or zero capacity. free_change_7d_bytes = free_bytes minus the free space of the
-- newest observation in repository_space taken at or before now - 7 days (negative: space is being
-- used up); NULL when the history does not reach that far back. The same for 30 days. low_free is 1
-- when free_pct is below etl_settings 'repository_low_free_pct' (default 10 when the row is absent).
-- "Now" is the database's current time when the query runs.
-- order: free_pct IS NULL, free_pct, repository_name, repository_uid
CREATE VIEW v_repository_capacity AS
WITH settings AS (
    SELECT COALESCE((SELECT CAST(value AS DOUBLE PRECISION) FROM etl_settings
                     WHERE key = 'repository_low_free_pct'), 10.0) AS low_free_pct
),
history AS (
    SELECT s.repository_uid, s.observed_at, s.free_space,
           ROW_NUMBER() OVER (PARTITION BY s.repository_uid
                              ORDER BY s.observed_epoch DESC, s.run_id DESC) AS rn_newest,
           CASE WHEN s.observed_epoch <= c.now_epoch - 7 * 86400.0 THEN
                ROW_NUMBER() OVER (PARTITION BY s.repository_uid,
                                                CASE WHEN s.observed_epoch <= c.now_epoch - 7 * 86400.0
                                                     THEN 1 ELSE 0 END
                                   ORDER BY s.observed_epoch DESC, s.run_id DESC)
           END AS rn_7d,
           CASE WHEN s.observed_epoch <= c.now_epoch - 30 * 86400.0 THEN
                ROW_NUMBER() OVER (PARTITION BY s.repository_uid,
                                                CASE WHEN s.observed_epoch <= c.now_epoch - 30 * 86400.0
                                                     THEN 1 ELSE 0 END
                                   ORDER BY s.observed_epoch DESC, s.run_id DESC)
           END AS rn_30d
    FROM v__repository_space s
    CROSS JOIN v__clock c
),
observed AS (
    SELECT repository_uid,
           COUNT(*) AS observations,
           MAX(CASE WHEN rn_newest = 1 THEN observed_at END) AS observed_utc,
           MAX(CASE WHEN rn_7d = 1 THEN observed_at END) AS observed_7d_ago_utc,
           MAX(CASE WHEN rn_7d = 1 THEN free_space END) AS free_7d_ago_bytes,
           MAX(CASE WHEN rn_30d = 1 THEN observed_at END) AS observed_30d_ago_utc,
           MAX(CASE WHEN rn_30d = 1 THEN free_space END) AS free_30d_ago_bytes
    FROM history
    GROUP BY repository_uid
),
current_space AS (
    SELECT r.uid, r.name, r.kind, r.backup_server_uid, r.last_loaded_at,
           CASE WHEN r.capacity >= 0 THEN r.capacity END AS capacity,
           CASE WHEN r.free_space >= 0 THEN r.free_space END AS free_space
    FROM repositories r
    WHERE NOT r.placeholder
),
figures AS (
    SELECT r.*,
           CASE WHEN r.capacity > 0 AND r.free_space IS NOT NULL
                THEN 100.0 * r.free_space / r.capacity END AS free_pct_raw
    FROM current_space r
)
SELECT r.uid AS repository_uid,
       r.name AS repository_name,
       r.kind,
       r.backup_server_uid,
       b.name AS backup_server_name,
       r.capacity AS capacity_bytes,
       r.free_space AS free_bytes,
       CASE WHEN r.capacity IS NOT NULL AND r.free_space IS NOT NULL THEN r.capacity - r.free_space END
           AS used_bytes,
       CAST(ROUND(CAST(r.free_pct_raw AS NUMERIC), 2) AS DOUBLE PRECISION) AS free_pct,
       st.low_free_pct,
       CASE WHEN r.free_pct_raw IS NULL THEN NULL WHEN r.free_pct_raw < st.low_free_pct THEN 1 ELSE 0 END
           AS low_free,
       COALESCE(o.observed_utc, r.last_loaded_at) AS observed_utc,
       COALESCE(o.observations, 0) AS observations,
       o.free_7d_ago_bytes,
       o.observed_7d_ago_utc,
       r.free_space - o.free_7d_ago_bytes AS free_change_7d_bytes,
       o.free_30d_ago_bytes,
       o.observed_30d_ago_utc,
       r.free_space - o.free_30d_ago_bytes AS free_change_30d_bytes
FROM figures r
CROSS JOIN settings st
LEFT JOIN observed o ON o.repository_uid = r.uid
LEFT JOIN backup_servers b ON b.uid = r.backup_server_uid
