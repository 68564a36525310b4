-- Helper (SQLite): the database's current time, read once per statement ('now' = CURRENT_TIMESTAMP,
-- with milliseconds), as UTC text and as Unix epoch seconds. Used by v_vm_replica_status.
CREATE VIEW v__clock AS
SELECT strftime('%Y-%m-%d %H:%M:%f', 'now') AS now_utc,
       (julianday('now') - 2440587.5) * 86400.0 AS now_epoch
