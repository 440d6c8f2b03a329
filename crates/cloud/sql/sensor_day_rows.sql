-- The stored day rows of one plant's day for the sensors a batch has minutes of, to be
-- combined with those minutes (`telemetry::Folded`).
SELECT sensor_id, count, min, max, mean, position FROM cloud.sensor_day
 WHERE plant = $1 AND day = $2 AND sensor_id = ANY($3)
