SELECT plant, machine_id, line_id, machine_type, predicted_days, lower_days, upper_days, predicted_at,
       model_version, open_order_id, open_order_kind, scheduled_for, last_performed_at, last_failure_at, due, position
  FROM cloud.maintenance
 WHERE position > $1 AND ($2::smallint[] IS NULL OR plant = ANY($2)) ORDER BY position LIMIT $3
