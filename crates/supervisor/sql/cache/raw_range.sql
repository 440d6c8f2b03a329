SELECT sensor_id, minute_ms, readings FROM history_raw
WHERE sensor_id = ?1 AND minute_ms >= ?2 AND minute_ms < ?3 ORDER BY minute_ms
