-- Helper (PostgreSQL): agent restore points EM still lists (deleted_at NULL) that are not placeholders,
-- with the creation time as Unix epoch seconds. computer_name is the point's Name up to its last '@'
-- (EM names an agent point `<computer>@<time>` and sends no computer element: em-backup-side.md §10).
CREATE VIEW v__agent_restore_points AS
SELECT p.uid, p.backup_server_uid, p.restore_point_uid, p.backup_file_uid, p.computer_name,
       p.creation_time_utc,
       CAST(EXTRACT(EPOCH FROM p.creation_time_utc) AS DOUBLE PRECISION) AS created_epoch
FROM agent_restore_points p
WHERE NOT p.placeholder AND p.deleted_at IS NULL
