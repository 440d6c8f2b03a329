INSERT INTO monitor.state (name, position, state, taken_at) VALUES ($1, $2, $3, now())
ON CONFLICT (name, position) DO UPDATE SET state = EXCLUDED.state, taken_at = now()
