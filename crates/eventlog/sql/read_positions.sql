SELECT position, stream, version, type, schema_version, json, bytes, metadata, idempotency_key, recorded_at, occurred_at,
       origin, origin_position, origin_recorded_at
  FROM eventlog.all_events
 WHERE position = ANY($1)
 ORDER BY position
