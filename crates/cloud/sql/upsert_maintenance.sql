INSERT INTO cloud.maintenance (plant, machine_id, line_id, machine_type, predicted_days, lower_days, upper_days,
                               predicted_at, model_version, open_order_id, open_order_kind, scheduled_for,
                               last_performed_at, last_failure_at, position, due)
SELECT * FROM unnest($1::smallint[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::float8[],
                     $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::timestamptz[],
                     $13::timestamptz[], $14::timestamptz[], $15::bigint[], $16::boolean[])
ON CONFLICT (plant, machine_id) DO UPDATE SET
    line_id = EXCLUDED.line_id, machine_type = EXCLUDED.machine_type, predicted_days = EXCLUDED.predicted_days,
    lower_days = EXCLUDED.lower_days, upper_days = EXCLUDED.upper_days, predicted_at = EXCLUDED.predicted_at,
    model_version = EXCLUDED.model_version, open_order_id = EXCLUDED.open_order_id,
    open_order_kind = EXCLUDED.open_order_kind, scheduled_for = EXCLUDED.scheduled_for,
    last_performed_at = EXCLUDED.last_performed_at, last_failure_at = EXCLUDED.last_failure_at,
    position = EXCLUDED.position, due = EXCLUDED.due
