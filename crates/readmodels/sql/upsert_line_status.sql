INSERT INTO readmodel.line_status AS l (line_id, sensors, reporting, stale, warning, anomalous, open_critical, open_major,
    open_minor, machines_due_7d, readings_per_s, newest_reading, position)
SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::int[], $5::int[], $6::int[], $7::int[], $8::int[], $9::int[],
    $10::int[], $11::float8[], $12::timestamptz[], $13::bigint[])
ON CONFLICT (line_id) DO UPDATE SET sensors = EXCLUDED.sensors, reporting = EXCLUDED.reporting, stale = EXCLUDED.stale,
    warning = EXCLUDED.warning, anomalous = EXCLUDED.anomalous, open_critical = EXCLUDED.open_critical,
    open_major = EXCLUDED.open_major, open_minor = EXCLUDED.open_minor, machines_due_7d = EXCLUDED.machines_due_7d,
    readings_per_s = EXCLUDED.readings_per_s, newest_reading = EXCLUDED.newest_reading, position = EXCLUDED.position
