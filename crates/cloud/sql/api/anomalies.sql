SELECT plant, anomaly_id, machine_id, line_id, machine_type, severity, state, score, sensors, explanation,
       detector_version, started_at, updated_at, resolved_at, acknowledged_by, acknowledged_at, shelved_by,
       shelved_until, notes, position
  FROM cloud.anomalies
 WHERE ($1::smallint[] IS NULL OR plant = ANY($1))
   AND ($2::text[] IS NULL OR severity = ANY($2))
   AND ($3::text[] IS NULL OR state = ANY($3))
   AND ($4::text IS NULL OR machine_id = $4)
   AND ($5::timestamptz IS NULL OR started_at >= $5)
   AND ($6::timestamptz IS NULL OR started_at < $6)
   AND ($7::timestamptz IS NULL OR (started_at, plant, anomaly_id) < ($7, $8, $9))
 ORDER BY started_at DESC, plant DESC, anomaly_id DESC
 LIMIT $10
