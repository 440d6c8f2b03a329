INSERT INTO rows (model, key, machine_id, position, body) VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (model, key) DO UPDATE
SET machine_id = excluded.machine_id, position = excluded.position, body = excluded.body
WHERE excluded.position > rows.position
