-- One plant's sensor hours, machine by machine, hour by hour.
SELECT s.machine_id, h.sensor_id, h.hour, h.count, h.min, h.max, h.mean
  FROM cloud.sensor_hour h JOIN cloud.sensors s ON s.plant = h.plant AND s.sensor_id = h.sensor_id
 WHERE h.plant = $1
 ORDER BY s.machine_id, h.hour, h.sensor_id
