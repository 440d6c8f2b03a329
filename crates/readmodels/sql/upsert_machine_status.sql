INSERT INTO readmodel.machine_status AS m (machine_id, line_id, status, sensors, reporting, stale, warning, anomalous,
    open_critical, open_major, open_minor, due_in_days, due, newest_reading, position)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::int[], $7::int[], $8::int[],
    $9::int[], $10::int[], $11::int[], $12::float8[], $13::bool[], $14::timestamptz[], $15::bigint[])
ON CONFLICT (machine_id) DO UPDATE SET line_id = EXCLUDED.line_id, status = EXCLUDED.status, sensors = EXCLUDED.sensors,
    reporting = EXCLUDED.reporting, stale = EXCLUDED.stale, warning = EXCLUDED.warning, anomalous = EXCLUDED.anomalous,
    open_critical = EXCLUDED.open_critical, open_major = EXCLUDED.open_major, open_minor = EXCLUDED.open_minor,
    due_in_days = EXCLUDED.due_in_days, due = EXCLUDED.due, newest_reading = EXCLUDED.newest_reading, position = EXCLUDED.position
