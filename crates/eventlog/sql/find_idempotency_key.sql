SELECT stream, first_position, last_position, first_version, last_version FROM eventlog.idempotency_keys WHERE key = $1
