INSERT INTO readmodel.track_failures
    (machine_id, failed_at, machine_type, model_version, caught, alert_lead_days, scored, covered, at_leads, position)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::bool[], $6::float8[], $7::bigint[],
                     $8::bigint[], $9::jsonb[], $10::bigint[])
ON CONFLICT (machine_id, failed_at) DO UPDATE SET machine_type = EXCLUDED.machine_type,
    model_version = EXCLUDED.model_version, caught = EXCLUDED.caught, alert_lead_days = EXCLUDED.alert_lead_days,
    scored = EXCLUDED.scored, covered = EXCLUDED.covered, at_leads = EXCLUDED.at_leads, position = EXCLUDED.position
