INSERT INTO readmodel.sensor_minute AS m (sensor_id, minute, count, min, max, mean, position)
SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::int[], $4::float8[], $5::float8[], $6::float8[], $7::bigint[])
ON CONFLICT (sensor_id, minute) DO UPDATE SET count = m.count + EXCLUDED.count, min = least(m.min, EXCLUDED.min),
    max = greatest(m.max, EXCLUDED.max),
    mean = (m.mean * m.count + EXCLUDED.mean * EXCLUDED.count) / (m.count + EXCLUDED.count),
    position = EXCLUDED.position
