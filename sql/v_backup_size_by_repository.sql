-- v_backup_size rolled up per repository (one row with repository_uid NULL per server for backups whose
-- repository is not known): backups, jobs they belong to, current files, bytes on disk, bytes read from
-- the source, reduction_ratio = data_bytes / backup_bytes (NULL when 0), and the repository's capacity
-- and free space as last read (NULL when EM reports none: capacity -1 means unknown).
-- order: backup_server_name, repository_name, repository_uid
CREATE VIEW v_backup_size_by_repository AS
SELECT s.repository_uid,
       MAX(s.repository_name) AS repository_name,
       s.backup_server_uid,
       MAX(s.backup_server_name) AS backup_server_name,
       COUNT(*) AS backups,
       COUNT(DISTINCT s.job_uid) AS jobs,
       CAST(SUM(s.files) AS BIGINT) AS files,
       CAST(SUM(s.backup_bytes) AS BIGINT) AS backup_bytes,
       CAST(SUM(s.data_bytes) AS BIGINT) AS data_bytes,
       CASE WHEN SUM(s.backup_bytes) > 0
            THEN CAST(ROUND(CAST(CAST(SUM(s.data_bytes) AS DOUBLE PRECISION) / SUM(s.backup_bytes) AS NUMERIC), 2)
                      AS DOUBLE PRECISION)
       END AS reduction_ratio,
       MAX(CASE WHEN r.capacity >= 0 THEN r.capacity END) AS capacity_bytes,
       MAX(CASE WHEN r.free_space >= 0 THEN r.free_space END) AS free_bytes,
       MAX(s.newest_file_utc) AS newest_file_utc
FROM v_backup_size s
LEFT JOIN repositories r ON r.uid = s.repository_uid
GROUP BY s.backup_server_uid, s.repository_uid
