SELECT anomaly_id, machine_id, line_id, severity, state, score, sensors, explanation, started_at, updated_at,
       resolved_at, acknowledged_by, acknowledged_at, shelved_by, shelved_until, notes, position
  FROM readmodel.anomalies
