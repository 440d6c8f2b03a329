SELECT plant, anomaly_id, machine_id, line_id, machine_type, severity, state, score, sensors, explanation,
       detector_version, started_at, updated_at, resolved_at, acknowledged_by, acknowledged_at, shelved_by,
       shelved_until, notes, position
  FROM cloud.anomalies
 WHERE position > $1 AND ($2::smallint[] IS NULL OR plant = ANY($2)) ORDER BY position LIMIT $3
