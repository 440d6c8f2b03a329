-- Per machine: its sensors' hourly aggregates in [first, baseline_end) (the baseline) and
-- in [window_start, until) (the recent windows), each range one index scan per sensor.
WITH w AS (
    SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[])
        AS w(machine_id, first, baseline_end, window_start, until)
)
SELECT s.machine_id, h.sensor_id, h.hour, h.count, h.min, h.max, h.mean
  FROM w JOIN readmodel.sensors s ON s.machine_id = w.machine_id
  JOIN readmodel.sensor_hour h ON h.sensor_id = s.sensor_id
   AND h.hour >= w.first AND h.hour < least(w.baseline_end, w.until)
UNION ALL
SELECT s.machine_id, h.sensor_id, h.hour, h.count, h.min, h.max, h.mean
  FROM w JOIN readmodel.sensors s ON s.machine_id = w.machine_id
  JOIN readmodel.sensor_hour h ON h.sensor_id = s.sensor_id
   AND h.hour >= greatest(w.window_start, w.baseline_end, w.first) AND h.hour < w.until
