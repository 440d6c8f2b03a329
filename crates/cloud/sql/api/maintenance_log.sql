SELECT plant, entry_id, machine_id, kind, state, at, scheduled_for, scheduled_by, performed_at, performed_by,
       note, performed_note
  FROM cloud.maintenance_log
 WHERE ($1::smallint[] IS NULL OR plant = ANY($1))
   AND ($2::text IS NULL OR machine_id = $2)
   AND ($3::text[] IS NULL OR kind = ANY($3))
   AND ($4::timestamptz IS NULL OR at >= $4)
   AND ($5::timestamptz IS NULL OR at < $5)
   AND ($6::timestamptz IS NULL OR (at, plant, entry_id) < ($6, $7, $8))
 ORDER BY at DESC, plant DESC, entry_id DESC
 LIMIT $9
