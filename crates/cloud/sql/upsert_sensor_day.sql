-- A batch's day rows, each already combined (`telemetry::Folded`) from the stored row and
-- every minute of the batch in order: written once a batch.
INSERT INTO cloud.sensor_day AS a (plant, sensor_id, day, count, min, max, mean, position)
SELECT $1, s, t, c, lo, hi, m, p
  FROM unnest($2::int[], $3::timestamptz[], $4::int[], $5::float8[], $6::float8[], $7::float8[], $8::bigint[])
       AS u(s, t, c, lo, hi, m, p)
ON CONFLICT (plant, sensor_id, day) DO UPDATE SET count = EXCLUDED.count, min = EXCLUDED.min,
    max = EXCLUDED.max, mean = EXCLUDED.mean, position = EXCLUDED.position
