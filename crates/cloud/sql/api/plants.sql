SELECT p.plant, p.plant_id, p.name, p.lines, p.machines, p.sensors, coalesce(s.readings, 0), s.newest_reading
  FROM cloud.plants p LEFT JOIN cloud.plant_status s ON s.plant = p.plant
 WHERE ($1::smallint[] IS NULL OR p.plant = ANY($1))
 ORDER BY p.plant
