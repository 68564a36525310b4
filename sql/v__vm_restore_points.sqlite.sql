-- Helper (SQLite): VM restore points EM still lists (deleted_at NULL) that are not placeholders, with
-- the creation time as Unix epoch seconds and vm_label, the VM's name: VmDisplayName, else VmName, else
-- the point's name up to its last '@' (EM names a point `<vm>@<time>`; not every server sends the
-- name elements, em-backup-side.md §3).
CREATE VIEW v__vm_restore_points AS
SELECT p.uid, p.backup_server_uid, p.restore_point_uid, p.backup_file_uid, p.hierarchy_obj_ref,
       p.creation_time_utc,
       COALESCE(p.vm_display_name, p.vm_name,
                CASE WHEN instr(p.name, '@') = 0 THEN p.name
                     WHEN instr(substr(p.name, instr(p.name, '@') + 1), '@') = 0  -- one '@', the usual
                     THEN substr(p.name, 1, instr(p.name, '@') - 1)
                     ELSE substr(rtrim(p.name, replace(p.name, '@', '')), 1,
                                 length(rtrim(p.name, replace(p.name, '@', ''))) - 1)
                END) AS vm_label,
       (julianday(p.creation_time_utc) - 2440587.5) * 86400.0 AS created_epoch
FROM vm_restore_points p
WHERE NOT p.placeholder AND p.deleted_at IS NULL
