INSERT INTO cloud.maintenance_log (plant, entry_id, machine_id, kind, state, at, scheduled_for, scheduled_by,
                                   performed_at, performed_by, note, performed_note, position)
SELECT * FROM unnest($1::smallint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                     $7::timestamptz[], $8::text[], $9::timestamptz[], $10::text[], $11::text[], $12::text[],
                     $13::bigint[])
ON CONFLICT (plant, entry_id) DO UPDATE SET
    machine_id = EXCLUDED.machine_id, kind = EXCLUDED.kind, state = EXCLUDED.state, at = EXCLUDED.at,
    scheduled_for = EXCLUDED.scheduled_for, scheduled_by = EXCLUDED.scheduled_by,
    performed_at = EXCLUDED.performed_at, performed_by = EXCLUDED.performed_by, note = EXCLUDED.note,
    performed_note = EXCLUDED.performed_note, position = EXCLUDED.position
