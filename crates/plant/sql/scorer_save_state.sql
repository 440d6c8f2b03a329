INSERT INTO maintenance.scorer (name, last_tick, model_version, predictions, updated_at) VALUES ($1, $2, $3, $4, now())
ON CONFLICT (name) DO UPDATE SET last_tick = EXCLUDED.last_tick, model_version = EXCLUDED.model_version,
    predictions = EXCLUDED.predictions, updated_at = now()
