-- A minute's readings, or a late chunk appended to what is stored.
INSERT INTO readmodel.sensor_history AS h (sensor_id, minute, readings, position)
SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::bytea[], $4::bigint[])
ON CONFLICT (sensor_id, minute) DO UPDATE SET readings = h.readings || EXCLUDED.readings, position = EXCLUDED.position
