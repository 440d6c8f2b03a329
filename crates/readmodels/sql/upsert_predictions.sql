INSERT INTO readmodel.maintenance_predictions (machine_id, predicted_at, days, lower_days, upper_days, model_version, position)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[], $6::text[], $7::bigint[])
ON CONFLICT (machine_id, predicted_at) DO UPDATE SET days = EXCLUDED.days, lower_days = EXCLUDED.lower_days,
    upper_days = EXCLUDED.upper_days, model_version = EXCLUDED.model_version, position = EXCLUDED.position
