INSERT INTO cloud.projections (name, position, memory, updated_at) VALUES ($1, $2, $3, now())
ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, memory = EXCLUDED.memory, updated_at = now()
