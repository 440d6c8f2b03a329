INSERT INTO cloud.sensor_minute AS a (plant, sensor_id, minute, count, min, max, mean, position)
SELECT $1, s, t, c, lo, hi, m, p
  FROM unnest($2::int[], $3::timestamptz[], $4::int[], $5::float8[], $6::float8[], $7::float8[], $8::bigint[])
       AS u(s, t, c, lo, hi, m, p)
ON CONFLICT (plant, sensor_id, minute) DO UPDATE SET count = a.count + EXCLUDED.count, min = least(a.min, EXCLUDED.min),
    max = greatest(a.max, EXCLUDED.max),
    mean = (a.mean * a.count + EXCLUDED.mean * EXCLUDED.count) / (a.count + EXCLUDED.count),
    position = EXCLUDED.position
