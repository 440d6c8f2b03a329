-- Rows written after the history projection's durable checkpoint: replayed events must
-- not add their readings to these again.
SELECT sensor_id, minute, position FROM readmodel.sensor_history WHERE position > $1
