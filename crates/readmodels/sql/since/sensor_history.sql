-- Raw history for charts is read by range, not followed: this is for catching up a cache.
SELECT sensor_id, minute, readings, position FROM readmodel.sensor_history WHERE position > $1 ORDER BY position
