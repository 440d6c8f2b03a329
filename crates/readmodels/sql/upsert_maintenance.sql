INSERT INTO readmodel.maintenance (machine_id, predicted_days, lower_days, upper_days, predicted_at, model_version,
    open_order_id, open_order_kind, scheduled_for, last_performed_at, position, due)
SELECT * FROM unnest($1::text[], $2::float8[], $3::float8[], $4::float8[], $5::timestamptz[], $6::text[], $7::text[],
    $8::text[], $9::timestamptz[], $10::timestamptz[], $11::bigint[], $12::bool[])
ON CONFLICT (machine_id) DO UPDATE SET predicted_days = EXCLUDED.predicted_days, lower_days = EXCLUDED.lower_days,
    upper_days = EXCLUDED.upper_days, predicted_at = EXCLUDED.predicted_at, model_version = EXCLUDED.model_version,
    open_order_id = EXCLUDED.open_order_id, open_order_kind = EXCLUDED.open_order_kind,
    scheduled_for = EXCLUDED.scheduled_for, last_performed_at = EXCLUDED.last_performed_at,
    position = EXCLUDED.position, due = EXCLUDED.due
