INSERT INTO readmodel.sensor_state AS s (sensor_id, machine_id, value, ts, status, position)
SELECT * FROM unnest($1::int[], $2::text[], $3::float8[], $4::timestamptz[], $5::text[], $6::bigint[])
ON CONFLICT (sensor_id) DO UPDATE SET value = EXCLUDED.value, ts = EXCLUDED.ts, status = EXCLUDED.status,
    position = EXCLUDED.position
