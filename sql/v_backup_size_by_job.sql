-- v_backup_size rolled up per job on its backup server (one row with job_uid NULL per server for the
-- backups whose job is not known): backups, repositories they are in, current files, bytes on disk,
-- bytes read from the source, and reduction_ratio = data_bytes / backup_bytes (NULL when 0).
-- order: backup_server_name, job_name, job_uid
CREATE VIEW v_backup_size_by_job AS
SELECT s.job_uid,
       MAX(s.job_name) AS job_name,
       s.backup_server_uid,
       MAX(s.backup_server_name) AS backup_server_name,
       COUNT(*) AS backups,
       COUNT(DISTINCT s.repository_uid) AS repositories,
       CAST(SUM(s.files) AS BIGINT) AS files,
       CAST(SUM(s.backup_bytes) AS BIGINT) AS backup_bytes,
       CAST(SUM(s.data_bytes) AS BIGINT) AS data_bytes,
       CASE WHEN SUM(s.backup_bytes) > 0
            THEN CAST(ROUND(CAST(CAST(SUM(s.data_bytes) AS DOUBLE PRECISION) / SUM(s.backup_bytes) AS NUMERIC), 2)
                      AS DOUBLE PRECISION)
       END AS reduction_ratio,
       MAX(s.newest_file_utc) AS newest_file_utc
FROM v_backup_size s
GROUP BY s.backup_server_uid, s.job_uid
