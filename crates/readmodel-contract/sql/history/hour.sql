-- Hourly aggregates of some sensors over [from, to).
SELECT sensor_id, hour, count, min, max, mean, position
FROM readmodel.sensor_hour
WHERE sensor_id = ANY($1) AND hour >= $2 AND hour < $3
ORDER BY sensor_id, hour
