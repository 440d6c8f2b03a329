-- Adds KPI deltas to their rows (every column a sum; see the migration). One text for
-- both buckets: `kpi::KpiTable` puts in `{table}` (kpi_hour | kpi_day) and `{bucket}`
-- (hour | day).
INSERT INTO cloud.{table} AS k (plant, line_id, machine_type, {bucket}, position, readings, sensor_hours, anomalies_minor, anomalies_major, anomalies_critical, acknowledged, ack_ms, maintenance_performed, failures, predictions, predicted_millidays, planned_ms, running_ms, parts, good_parts, ideal_ms)
SELECT * FROM unnest($1::smallint[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[],
                     $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[], $21::bigint[])
ON CONFLICT (plant, {bucket}, line_id, machine_type) DO UPDATE SET
    readings = k.readings + EXCLUDED.readings,
    sensor_hours = k.sensor_hours + EXCLUDED.sensor_hours,
    anomalies_minor = k.anomalies_minor + EXCLUDED.anomalies_minor,
    anomalies_major = k.anomalies_major + EXCLUDED.anomalies_major,
    anomalies_critical = k.anomalies_critical + EXCLUDED.anomalies_critical,
    acknowledged = k.acknowledged + EXCLUDED.acknowledged,
    ack_ms = k.ack_ms + EXCLUDED.ack_ms,
    maintenance_performed = k.maintenance_performed + EXCLUDED.maintenance_performed,
    failures = k.failures + EXCLUDED.failures,
    predictions = k.predictions + EXCLUDED.predictions,
    predicted_millidays = k.predicted_millidays + EXCLUDED.predicted_millidays,
    planned_ms = k.planned_ms + EXCLUDED.planned_ms,
    running_ms = k.running_ms + EXCLUDED.running_ms,
    parts = k.parts + EXCLUDED.parts,
    good_parts = k.good_parts + EXCLUDED.good_parts,
    ideal_ms = k.ideal_ms + EXCLUDED.ideal_ms,
    position = greatest(k.position, EXCLUDED.position)
