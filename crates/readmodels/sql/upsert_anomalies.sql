INSERT INTO readmodel.anomalies (anomaly_id, machine_id, line_id, severity, state, score, sensors, explanation,
    started_at, updated_at, resolved_at, acknowledged_by, acknowledged_at, shelved_by, shelved_until, notes, position)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::jsonb[], $8::text[],
    $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::text[], $13::timestamptz[], $14::text[],
    $15::timestamptz[], $16::jsonb[], $17::bigint[])
ON CONFLICT (anomaly_id) DO UPDATE SET severity = EXCLUDED.severity, state = EXCLUDED.state, score = EXCLUDED.score,
    sensors = EXCLUDED.sensors, explanation = EXCLUDED.explanation, updated_at = EXCLUDED.updated_at,
    resolved_at = EXCLUDED.resolved_at, acknowledged_by = EXCLUDED.acknowledged_by,
    acknowledged_at = EXCLUDED.acknowledged_at, shelved_by = EXCLUDED.shelved_by,
    shelved_until = EXCLUDED.shelved_until, notes = EXCLUDED.notes, position = EXCLUDED.position
