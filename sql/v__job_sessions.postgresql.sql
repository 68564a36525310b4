-- Helper (PostgreSQL): job sessions that are not placeholders, with the dialect-specific parts done
-- once: instants as Unix epoch seconds, the UTC day of the start, is_retry as 0/1, and is_finished
-- (1 when State is Stopped: EM's only sign that a session has ended; Result is not trusted before).
CREATE VIEW v__job_sessions AS
SELECT s.uid, s.backup_server_uid, s.job_uid, s.job_name, s.name, s.creation_time_utc, s.end_time_utc,
       s.state, s.result, s.progress, s.failure_message,
       CASE WHEN s.is_retry THEN 1 ELSE 0 END AS is_retry,
       CASE WHEN s.state = 'Stopped' THEN 1 ELSE 0 END AS is_finished,
       CAST(EXTRACT(EPOCH FROM s.creation_time_utc) AS DOUBLE PRECISION) AS start_epoch,
       CAST(EXTRACT(EPOCH FROM s.end_time_utc) AS DOUBLE PRECISION) AS end_epoch,
       CAST(s.creation_time_utc AT TIME ZONE 'UTC' AS DATE) AS start_day_utc
FROM replica_job_sessions s
WHERE NOT s.placeholder
