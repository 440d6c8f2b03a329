SELECT origin, position, cloud_position, recorded_at, updated_at FROM eventlog.origins ORDER BY origin
