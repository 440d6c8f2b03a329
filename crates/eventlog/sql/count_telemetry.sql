-- Telemetry batches at or before a position.
SELECT count(*) FROM eventlog.telemetry WHERE position <= $1
