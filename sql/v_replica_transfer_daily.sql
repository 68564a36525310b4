-- Deprecated: kept so that dashboards written against it keep working; read v_replica_source_size_daily.
-- The same rows under the old column names: bytes and bytes_ok are source_bytes and source_bytes_ok,
-- EM's TotalSize (the size of the VMs processed), never bytes transferred.
-- order: day_utc DESC, backup_server_name, backup_server_uid
CREATE VIEW v_replica_transfer_daily AS
SELECT backup_server_uid,
       backup_server_name,
       day_utc,
       tasks,
       tasks_success,
       tasks_warning,
       tasks_failed,
       source_bytes AS bytes,
       source_bytes_ok AS bytes_ok
FROM v_replica_source_size_daily
