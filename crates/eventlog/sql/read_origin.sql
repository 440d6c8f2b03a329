SELECT position, cloud_position, recorded_at FROM eventlog.origins WHERE origin = $1
