SELECT a.plant, a.anomaly_id, machine_id, line_id, machine_type, severity, state, score, sensors, explanation,
       detector_version, started_at, updated_at, resolved_at, acknowledged_by, acknowledged_at, shelved_by,
       shelved_until, notes, position
  FROM cloud.anomalies a JOIN unnest($1::smallint[], $2::text[]) AS k(plant, anomaly_id)
    ON a.plant = k.plant AND a.anomaly_id = k.anomaly_id
