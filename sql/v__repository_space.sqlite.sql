-- Helper (SQLite): repository space observations (one per run that read the repository) with the
-- observation time as Unix epoch seconds and its UTC day; a negative capacity or free space (EM's -1:
-- unknown) as NULL.
CREATE VIEW v__repository_space AS
SELECT r.repository_uid, r.run_id, r.observed_at,
       CASE WHEN r.capacity >= 0 THEN r.capacity END AS capacity,
       CASE WHEN r.free_space >= 0 THEN r.free_space END AS free_space,
       (julianday(r.observed_at) - 2440587.5) * 86400.0 AS observed_epoch,
       date(r.observed_at) AS observed_day_utc
FROM repository_space r
