-- A stream as one origin (plant) wrote it, in a log that imports several.
SELECT position, stream, version, type, schema_version, json, bytes, metadata, idempotency_key, recorded_at, occurred_at,
       origin, origin_position, origin_recorded_at
  FROM eventlog.all_events
 WHERE stream = $1 AND origin = $2 AND version > $3
 ORDER BY version
 LIMIT $4
