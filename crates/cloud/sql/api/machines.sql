SELECT m.machine_id, m.line_id, m.number, m.machine_type, m.description, m.sensors,
       t.predicted_days, t.lower_days, t.upper_days, t.predicted_at, t.model_version, t.open_order_id,
       t.scheduled_for, t.last_performed_at, t.last_failure_at,
       (SELECT count(*) FROM cloud.anomalies a
         WHERE a.plant = m.plant AND a.machine_id = m.machine_id AND a.state <> 'resolved') AS open_anomalies
  FROM cloud.machines m
  LEFT JOIN cloud.maintenance t ON t.plant = m.plant AND t.machine_id = m.machine_id
 WHERE m.plant = $1
   AND ($2::text IS NULL OR m.line_id = $2)
   AND ($3::text IS NULL OR m.machine_type = $3)
   AND ($4::text IS NULL OR m.machine_id = $4)
   AND ($5::text IS NULL OR m.machine_id > $5)
 ORDER BY m.machine_id
 LIMIT $6
