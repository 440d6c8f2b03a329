SELECT bucket_ms, count, min, max, mean FROM history_buckets
WHERE resolution = ?1 AND sensor_id = ?2 AND bucket_ms >= ?3 AND bucket_ms < ?4 ORDER BY bucket_ms
