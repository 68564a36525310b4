-- Helper (SQLite): backup job sessions that are not placeholders, with the dialect-specific parts done
-- once: instants as Unix epoch seconds, the UTC day of the start, is_retry as 0/1, and is_finished (1
-- when State is Stopped: EM's only sign that a session has ended; Result is not trusted before).
CREATE VIEW v__backup_job_sessions AS
SELECT s.uid, s.backup_server_uid, s.job_uid, s.parent_session_uid, s.job_name, s.job_type, s.name,
       s.creation_time_utc, s.end_time_utc, s.state, s.result, s.failure_message,
       CASE WHEN s.is_retry THEN 1 ELSE 0 END AS is_retry,
       CASE WHEN s.state = 'Stopped' THEN 1 ELSE 0 END AS is_finished,
       (julianday(s.creation_time_utc) - 2440587.5) * 86400.0 AS start_epoch,
       (julianday(s.end_time_utc) - 2440587.5) * 86400.0 AS end_epoch,
       date(s.creation_time_utc) AS start_day_utc
FROM backup_job_sessions s
WHERE NOT s.placeholder
