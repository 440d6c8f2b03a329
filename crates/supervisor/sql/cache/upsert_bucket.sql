INSERT INTO history_buckets (resolution, sensor_id, bucket_ms, count, min, max, mean, position)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
ON CONFLICT (resolution, sensor_id, bucket_ms) DO UPDATE
SET count = excluded.count, min = excluded.min, max = excluded.max, mean = excluded.mean, position = excluded.position
WHERE excluded.position >= history_buckets.position
