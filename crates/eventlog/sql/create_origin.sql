INSERT INTO eventlog.origins (origin, position, cloud_position) VALUES ($1, 0, 0) ON CONFLICT (origin) DO NOTHING
