SELECT l.plant, l.entry_id, machine_id, kind, state, at, scheduled_for, scheduled_by, performed_at, performed_by,
       note, performed_note, position
  FROM cloud.maintenance_log l JOIN unnest($1::smallint[], $2::text[]) AS k(plant, entry_id)
    ON l.plant = k.plant AND l.entry_id = k.entry_id
