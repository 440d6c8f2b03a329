SELECT plant, entry_id, machine_id, kind, state, at, scheduled_for, scheduled_by, performed_at, performed_by,
       note, performed_note, position
  FROM cloud.maintenance_log
 WHERE position > $1 AND ($2::smallint[] IS NULL OR plant = ANY($2)) ORDER BY position LIMIT $3
