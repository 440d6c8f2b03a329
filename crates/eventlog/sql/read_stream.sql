SELECT position, stream, version, type, schema_version, json, bytes, metadata, idempotency_key, recorded_at, occurred_at
  FROM eventlog.all_events
 WHERE stream = $1 AND version > $2
 ORDER BY version
 LIMIT $3
