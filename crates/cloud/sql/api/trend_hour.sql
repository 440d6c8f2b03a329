-- In no particular order: `queries::trend` puts each sensor's points in time order.
SELECT sensor_id, hour, count, min, max, mean FROM cloud.sensor_hour
 WHERE plant = $1 AND sensor_id = ANY($2) AND hour >= $3 AND hour < $4
