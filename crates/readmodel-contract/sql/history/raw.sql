-- Raw readings of some sensors over [from, to): one row per sensor per minute.
SELECT sensor_id, minute, readings, position
FROM readmodel.sensor_history
WHERE sensor_id = ANY($1) AND minute >= date_trunc('minute', $2::timestamptz) AND minute < $3
ORDER BY sensor_id, minute
