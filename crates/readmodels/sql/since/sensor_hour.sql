SELECT * FROM readmodel.sensor_hour WHERE position > $1 ORDER BY position
