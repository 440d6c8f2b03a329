INSERT INTO readmodel.track_state (name, position, state, taken_at) VALUES ($1, $2, $3, now())
ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, state = EXCLUDED.state, taken_at = now()
