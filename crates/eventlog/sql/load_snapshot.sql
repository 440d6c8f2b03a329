SELECT version, schema_version, state, taken_at FROM eventlog.snapshots
 WHERE stream = $1 AND version <= $2
 ORDER BY version DESC
 LIMIT 1
