-- In no particular order: `queries::trend` puts each sensor's points in time order.
SELECT sensor_id, minute, count, min, max, mean FROM cloud.sensor_minute
 WHERE plant = $1 AND sensor_id = ANY($2) AND minute >= $3 AND minute < $4
