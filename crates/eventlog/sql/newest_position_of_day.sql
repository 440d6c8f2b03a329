-- The newest position among the telemetry of day $1 (through the parent table, which
-- prunes to that day's partition).
SELECT max(position) FROM eventlog.telemetry WHERE occurred_at >= $1::date AND occurred_at < $1::date + 1
