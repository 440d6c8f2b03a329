UPDATE eventlog.origins SET position = $2, recorded_at = $3, cloud_position = $4, updated_at = now() WHERE origin = $1
