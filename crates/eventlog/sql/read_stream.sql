-- A stream of this log's own (origin 0): imported plant events are read by position only.
SELECT position, stream, version, type, schema_version, json, bytes, metadata, idempotency_key, recorded_at, occurred_at,
       origin, origin_position, origin_recorded_at
  FROM eventlog.all_events
 WHERE stream = $1 AND version > $2 AND origin = 0
 ORDER BY version
 LIMIT $3
