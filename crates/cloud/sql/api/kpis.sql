-- KPI sums per bucket for each key the grouping ($4: plant | line | machine_type) gives,
-- every bucket of the range present (zeros where nothing was recorded). One text for both
-- buckets: `kpi::KpiTable` puts in `{table}` (kpi_hour | kpi_day) and `{bucket}` (hour | day).
WITH keys AS (
    SELECT plant,
           CASE WHEN $4 = 'line' THEN line_id ELSE '' END AS line_id,
           CASE WHEN $4 = 'machine_type' THEN machine_type ELSE '' END AS machine_type,
           sum(sensors)::bigint AS sensors
      FROM cloud.groups
     WHERE ($1::smallint[] IS NULL OR plant = ANY($1))
     GROUP BY 1, 2, 3
), buckets AS (
    SELECT generate_series($2::timestamptz, $3::timestamptz - $5::text::interval, $5::text::interval) AS bucket
), sums AS (
    SELECT plant,
           CASE WHEN $4 = 'line' THEN line_id ELSE '' END AS line_id,
           CASE WHEN $4 = 'machine_type' THEN machine_type ELSE '' END AS machine_type,
           {bucket} AS bucket,
           sum(readings)::bigint AS readings, sum(sensor_hours)::bigint AS sensor_hours,
           sum(anomalies_minor)::bigint AS minor, sum(anomalies_major)::bigint AS major,
           sum(anomalies_critical)::bigint AS critical, sum(acknowledged)::bigint AS acknowledged,
           sum(ack_ms)::bigint AS ack_ms, sum(maintenance_performed)::bigint AS performed,
           sum(failures)::bigint AS failures, sum(predictions)::bigint AS predictions,
           sum(predicted_millidays)::bigint AS millidays, sum(planned_ms)::bigint AS planned_ms,
           sum(running_ms)::bigint AS running_ms, sum(parts)::bigint AS parts,
           sum(good_parts)::bigint AS good_parts, sum(ideal_ms)::bigint AS ideal_ms
      FROM cloud.{table}
     WHERE plant = ANY(coalesce($1::smallint[], ARRAY(SELECT plant FROM cloud.plants))) AND {bucket} >= $2 AND {bucket} < $3
     GROUP BY 1, 2, 3, 4
)
SELECT k.plant, k.line_id, k.machine_type, b.bucket, k.sensors,
       coalesce(s.readings, 0), coalesce(s.sensor_hours, 0), coalesce(s.minor, 0), coalesce(s.major, 0),
       coalesce(s.critical, 0), coalesce(s.acknowledged, 0), coalesce(s.ack_ms, 0), coalesce(s.performed, 0),
       coalesce(s.failures, 0), coalesce(s.predictions, 0), coalesce(s.millidays, 0), coalesce(s.planned_ms, 0),
       coalesce(s.running_ms, 0), coalesce(s.parts, 0), coalesce(s.good_parts, 0), coalesce(s.ideal_ms, 0)
  FROM keys k CROSS JOIN buckets b
  LEFT JOIN sums s ON s.plant = k.plant AND s.line_id = k.line_id AND s.machine_type = k.machine_type
                  AND s.bucket = b.bucket
 ORDER BY k.plant, k.line_id, k.machine_type, b.bucket
