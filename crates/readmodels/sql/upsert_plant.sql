INSERT INTO readmodel.plant (plant_id, name, lines, machines, sensors, position) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (plant_id) DO UPDATE SET name = EXCLUDED.name, lines = EXCLUDED.lines, machines = EXCLUDED.machines,
    sensors = EXCLUDED.sensors, position = EXCLUDED.position
