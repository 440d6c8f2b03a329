SELECT sensor_id, machine_id, kind FROM readmodel.sensors ORDER BY sensor_id
