INSERT INTO cloud.plants (plant, plant_id, name, lines, machines, sensors, position) VALUES ($1, $2, $3, $4, $5, $6, $7)
