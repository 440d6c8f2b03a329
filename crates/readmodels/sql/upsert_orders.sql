-- A completion without its scheduling half keeps what the stored row says about scheduling.
INSERT INTO readmodel.maintenance_log AS o (order_id, machine_id, kind, state, scheduled_for, scheduled_by, note,
    performed_at, performed_by, performed_note, position)
SELECT order_id, machine_id, kind, state, scheduled_for, scheduled_by, coalesce(note, ''), performed_at, performed_by,
       performed_note, position
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[],
              $8::timestamptz[], $9::text[], $10::text[], $11::bigint[])
       AS t(order_id, machine_id, kind, state, scheduled_for, scheduled_by, note, performed_at, performed_by,
            performed_note, position)
ON CONFLICT (order_id) DO UPDATE SET state = EXCLUDED.state,
    scheduled_by = coalesce(EXCLUDED.scheduled_by, o.scheduled_by),
    note = CASE WHEN EXCLUDED.scheduled_by IS NULL THEN o.note ELSE EXCLUDED.note END,
    scheduled_for = coalesce(EXCLUDED.scheduled_for, o.scheduled_for),
    performed_at = EXCLUDED.performed_at, performed_by = EXCLUDED.performed_by,
    performed_note = EXCLUDED.performed_note, position = EXCLUDED.position
