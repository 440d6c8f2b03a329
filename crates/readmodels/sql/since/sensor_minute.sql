SELECT * FROM readmodel.sensor_minute WHERE position > $1 ORDER BY position
