INSERT INTO readmodel.sensor_hour AS h (sensor_id, hour, count, min, max, mean, position)
SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::int[], $4::float8[], $5::float8[], $6::float8[], $7::bigint[])
ON CONFLICT (sensor_id, hour) DO UPDATE SET count = h.count + EXCLUDED.count, min = least(h.min, EXCLUDED.min),
    max = greatest(h.max, EXCLUDED.max),
    mean = (h.mean * h.count + EXCLUDED.mean * EXCLUDED.count) / (h.count + EXCLUDED.count),
    position = EXCLUDED.position
