INSERT INTO cloud.predictions (plant, machine_id, predicted_at, days, lower_days, upper_days, model_version, position)
SELECT * FROM unnest($1::smallint[], $2::text[], $3::timestamptz[], $4::float8[], $5::float8[], $6::float8[],
                     $7::text[], $8::bigint[])
ON CONFLICT (plant, machine_id, predicted_at) DO NOTHING
