-- Helper (PostgreSQL): VM restore points EM still lists (deleted_at NULL) that are not placeholders, with
-- the creation time as Unix epoch seconds and vm_label, the VM's name: VmDisplayName, else VmName, else
-- the point's name up to its last '@' (EM names a point `<vm>@<time>`; not every server sends the
-- name elements, em-backup-side.md §3).
CREATE VIEW v__vm_restore_points AS
SELECT p.uid, p.backup_server_uid, p.restore_point_uid, p.backup_file_uid, p.hierarchy_obj_ref,
       p.creation_time_utc,
       COALESCE(p.vm_display_name, p.vm_name,
                CASE WHEN strpos(p.name, '@') = 0 THEN p.name
                     WHEN strpos(substr(p.name, strpos(p.name, '@') + 1), '@') = 0  -- one '@', the usual
                     THEN left(p.name, strpos(p.name, '@') - 1)
                     ELSE left(p.name, length(p.name) - strpos(reverse(p.name), '@'))
                END) AS vm_label,
       CAST(EXTRACT(EPOCH FROM p.creation_time_utc) AS DOUBLE PRECISION) AS created_epoch
FROM vm_restore_points p
WHERE NOT p.placeholder AND p.deleted_at IS NULL
