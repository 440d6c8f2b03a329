INSERT INTO trend (machine_id, plant, from_ms, to_ms, body) VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (machine_id, from_ms, to_ms) DO UPDATE SET body = excluded.body, plant = excluded.plant
