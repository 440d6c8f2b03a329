-- The stored hour rows of one plant's hour for the sensors a batch has minutes of, to be
-- combined with those minutes (`telemetry::Folded`).
SELECT sensor_id, count, min, max, mean, position FROM cloud.sensor_hour
 WHERE plant = $1 AND hour = $2 AND sensor_id = ANY($3)
