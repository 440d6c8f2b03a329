-- Every machine of the plants trained on, with its sensors' ids and kinds.
SELECT m.plant, m.machine_id, m.machine_type, s.sensor_id, s.kind
  FROM cloud.machines m JOIN cloud.sensors s ON s.plant = m.plant AND s.machine_id = m.machine_id
 WHERE ($1::smallint[] IS NULL OR m.plant = ANY($1))
 ORDER BY m.plant, m.machine_id, s.sensor_id
