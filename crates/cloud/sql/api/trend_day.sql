-- In no particular order: `queries::trend` puts each sensor's points in time order.
SELECT sensor_id, day, count, min, max, mean FROM cloud.sensor_day
 WHERE plant = $1 AND sensor_id = ANY($2) AND day >= $3 AND day < $4
