-- Minute rows written after the telemetry projection's durable checkpoint: replayed
-- readings already in them are not added again.
SELECT plant, sensor_id, minute, position FROM cloud.sensor_minute WHERE position > $1
