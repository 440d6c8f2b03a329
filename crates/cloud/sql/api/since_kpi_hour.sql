SELECT plant, line_id, machine_type, hour, readings, sensor_hours, anomalies_minor, anomalies_major,
       anomalies_critical, acknowledged, ack_ms, maintenance_performed, failures, predictions, predicted_millidays,
       planned_ms, running_ms, parts, good_parts, ideal_ms, position
  FROM cloud.kpi_hour
 WHERE position > $1 AND ($2::smallint[] IS NULL OR plant = ANY($2)) ORDER BY position LIMIT $3
