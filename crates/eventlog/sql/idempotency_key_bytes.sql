-- The space the idempotency keys take, indexes included.
SELECT pg_total_relation_size('eventlog.idempotency_keys')
