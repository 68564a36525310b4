-- Helper (SQLite): task sessions with instants as Unix epoch seconds and the UTC days of start and end, and
-- is_finished (1 when State is Completed: EM's only sign that a task has ended).
CREATE VIEW v__task_sessions AS
SELECT t.uid, t.job_session_uid, t.backup_server_uid, t.replica_point_uid, t.name, t.vm_display_name,
       t.creation_time_utc, t.end_time_utc, t.state, t.result, t.reason, t.total_size,
       CASE WHEN t.state = 'Completed' THEN 1 ELSE 0 END AS is_finished,
       (julianday(t.creation_time_utc) - 2440587.5) * 86400.0 AS start_epoch,
       (julianday(t.end_time_utc) - 2440587.5) * 86400.0 AS end_epoch,
       date(t.creation_time_utc) AS start_day_utc,
       date(t.end_time_utc) AS end_day_utc
FROM replica_task_sessions t
