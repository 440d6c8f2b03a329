SELECT sensor_id, name, kind, unit, normal_min, normal_max FROM cloud.sensors
 WHERE plant = $1 AND machine_id = $2 ORDER BY sensor_id
