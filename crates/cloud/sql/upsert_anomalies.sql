INSERT INTO cloud.anomalies (plant, anomaly_id, machine_id, line_id, machine_type, severity, state, score, sensors,
                             explanation, detector_version, started_at, updated_at, resolved_at, acknowledged_by,
                             acknowledged_at, shelved_by, shelved_until, notes, position)
SELECT * FROM unnest($1::smallint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::float8[], $9::jsonb[], $10::text[], $11::text[], $12::timestamptz[], $13::timestamptz[],
                     $14::timestamptz[], $15::text[], $16::timestamptz[], $17::text[], $18::timestamptz[],
                     $19::jsonb[], $20::bigint[])
ON CONFLICT (plant, anomaly_id) DO UPDATE SET
    machine_id = EXCLUDED.machine_id, line_id = EXCLUDED.line_id, machine_type = EXCLUDED.machine_type,
    severity = EXCLUDED.severity, state = EXCLUDED.state, score = EXCLUDED.score, sensors = EXCLUDED.sensors,
    explanation = EXCLUDED.explanation, detector_version = EXCLUDED.detector_version,
    started_at = EXCLUDED.started_at, updated_at = EXCLUDED.updated_at, resolved_at = EXCLUDED.resolved_at,
    acknowledged_by = EXCLUDED.acknowledged_by, acknowledged_at = EXCLUDED.acknowledged_at,
    shelved_by = EXCLUDED.shelved_by, shelved_until = EXCLUDED.shelved_until, notes = EXCLUDED.notes,
    position = EXCLUDED.position
