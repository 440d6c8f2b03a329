SELECT sensor_id, machine_id, value, ts, status, position FROM readmodel.sensor_state WHERE position > $1 ORDER BY position
