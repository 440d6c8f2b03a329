INSERT INTO readmodel.plant_status (plant_id, sensors, reporting, stale, warning, anomalous, open_critical, open_major,
    open_minor, machines_due_7d, readings_per_s, newest_reading, position)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (plant_id) DO UPDATE SET sensors = EXCLUDED.sensors, reporting = EXCLUDED.reporting, stale = EXCLUDED.stale,
    warning = EXCLUDED.warning, anomalous = EXCLUDED.anomalous, open_critical = EXCLUDED.open_critical,
    open_major = EXCLUDED.open_major, open_minor = EXCLUDED.open_minor, machines_due_7d = EXCLUDED.machines_due_7d,
    readings_per_s = EXCLUDED.readings_per_s, newest_reading = EXCLUDED.newest_reading, position = EXCLUDED.position
