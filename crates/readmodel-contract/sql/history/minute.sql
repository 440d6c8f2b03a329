-- Minute aggregates of some sensors over [from, to).
SELECT sensor_id, minute, count, min, max, mean, position
FROM readmodel.sensor_minute
WHERE sensor_id = ANY($1) AND minute >= $2 AND minute < $3
ORDER BY sensor_id, minute
