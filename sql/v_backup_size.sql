-- Per backup (one backup chain set, usually one per job and repository) that EM still lists (deleted_at
-- NULL), with its job, repository and backup server: the backup files EM still lists (deleted_at NULL;
-- placeholders left out) counted by type, the bytes they take on disk (sum of BackupSize), the bytes
-- read from the source before compression and deduplication (sum of DataSize), and reduction_ratio =
-- data_bytes / backup_bytes (NULL when backup_bytes is 0). An agent child backup (one computer) takes
-- the job of its parent backup when it has none of its own. Sizes are those EM recorded when each file
-- was written: later savings (ReFS block clone, deduplicating storage) are not reflected.
-- v_backup_size_by_job and v_backup_size_by_repository roll these rows up.
-- order: backup_server_name, job_name, backup_name, backup_uid
CREATE VIEW v_backup_size AS
WITH files AS (
    SELECT f.backup_uid,
           COUNT(*) AS files,
           SUM(CASE WHEN f.file_type = 'vbk' THEN 1 ELSE 0 END) AS full_files,
           SUM(CASE WHEN f.file_type = 'vib' THEN 1 ELSE 0 END) AS incremental_files,
           SUM(CASE WHEN f.file_type = 'vrb' THEN 1 ELSE 0 END) AS reverse_incremental_files,
           CAST(COALESCE(SUM(f.backup_size), 0) AS BIGINT) AS backup_bytes,
           CAST(COALESCE(SUM(f.data_size), 0) AS BIGINT) AS data_bytes,
           MAX(f.creation_time_utc) AS newest_file_utc
    FROM backup_files f
    WHERE f.deleted_at IS NULL AND NOT f.placeholder
    GROUP BY f.backup_uid
)
SELECT k.uid AS backup_uid,
       k.name AS backup_name,
       k.backup_type,
       k.platform,
       COALESCE(k.job_uid, parent.job_uid) AS job_uid,
       j.name AS job_name,
       k.repository_uid,
       r.name AS repository_name,
       k.backup_server_uid,
       b.name AS backup_server_name,
       COALESCE(f.files, 0) AS files,
       COALESCE(f.full_files, 0) AS full_files,
       COALESCE(f.incremental_files, 0) AS incremental_files,
       COALESCE(f.reverse_incremental_files, 0) AS reverse_incremental_files,
       COALESCE(f.backup_bytes, 0) AS backup_bytes,
       COALESCE(f.data_bytes, 0) AS data_bytes,
       CASE WHEN COALESCE(f.backup_bytes, 0) > 0
            THEN CAST(ROUND(CAST(CAST(f.data_bytes AS DOUBLE PRECISION) / f.backup_bytes AS NUMERIC), 2)
                      AS DOUBLE PRECISION)
       END AS reduction_ratio,
       f.newest_file_utc
FROM backups k
LEFT JOIN backups parent ON parent.uid = k.parent_backup_uid
LEFT JOIN jobs j ON j.uid = COALESCE(k.job_uid, parent.job_uid)
LEFT JOIN repositories r ON r.uid = k.repository_uid
LEFT JOIN backup_servers b ON b.uid = k.backup_server_uid
LEFT JOIN files f ON f.backup_uid = k.uid
WHERE k.deleted_at IS NULL
