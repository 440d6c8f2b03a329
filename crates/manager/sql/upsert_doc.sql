-- {table} is plants, lines or machines: one JSON document per plant.
INSERT INTO {table} (plant, body) VALUES (?1, ?2) ON CONFLICT (plant) DO UPDATE SET body = excluded.body
