-- Per machine: the first hour with readings at or after `since` (its last service, or
-- -infinity) and before `until`; one index probe per sensor.
SELECT w.machine_id, min(f.hour)
  FROM unnest($1::text[], $2::timestamptz[]) AS w(machine_id, since)
  JOIN readmodel.sensors s ON s.machine_id = w.machine_id
 CROSS JOIN LATERAL (
       SELECT h.hour FROM readmodel.sensor_hour h
        WHERE h.sensor_id = s.sensor_id AND h.hour >= w.since AND h.hour < $3
        ORDER BY h.hour LIMIT 1) f
 GROUP BY w.machine_id
