-- Helper (PostgreSQL): the database's current time (CURRENT_TIMESTAMP, the transaction's start)
-- as timestamptz and as Unix epoch seconds. Used by v_vm_replica_status.
CREATE VIEW v__clock AS
SELECT CURRENT_TIMESTAMP AS now_utc,
       CAST(EXTRACT(EPOCH FROM CURRENT_TIMESTAMP) AS DOUBLE PRECISION) AS now_epoch
