INSERT INTO eventlog.snapshots (stream, version, schema_version, state) VALUES ($1, $2, $3, $4)
ON CONFLICT (stream, version) DO UPDATE SET schema_version = EXCLUDED.schema_version, state = EXCLUDED.state, taken_at = now()
