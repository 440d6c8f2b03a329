-- One plant's stored day rows of a day, to be combined with a batch's minutes.
SELECT sensor_id, count, min, max, mean, position FROM cloud.sensor_day WHERE plant = $1 AND day = $2
