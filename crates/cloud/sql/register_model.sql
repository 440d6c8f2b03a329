INSERT INTO cloud.models (version, created_at, metrics, model) VALUES ($1, $2, $3, $4) ON CONFLICT (version) DO NOTHING
