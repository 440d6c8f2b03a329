SELECT sensor_id, value, ts, status, position FROM readmodel.sensor_state
