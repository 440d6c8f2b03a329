DELETE FROM eventlog.idempotency_keys WHERE expires_at < $1
