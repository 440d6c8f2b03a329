INSERT INTO history_raw (sensor_id, minute_ms, readings, position) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (sensor_id, minute_ms) DO UPDATE SET readings = excluded.readings, position = excluded.position
WHERE excluded.position >= history_raw.position
