-- Machines by how soon they could need service (the prediction's lower bound), soonest first.
SELECT plant, machine_id, line_id, machine_type, predicted_days, lower_days, upper_days, predicted_at,
       model_version, open_order_id, open_order_kind, scheduled_for, last_performed_at, last_failure_at, due
  FROM cloud.maintenance
 WHERE lower_days IS NOT NULL
   AND ($1::smallint[] IS NULL OR plant = ANY($1))
   AND ($2::float8 IS NULL OR lower_days <= $2)
   AND ($3::float8 IS NULL OR (lower_days, plant, machine_id) > ($3, $4, $5))
 ORDER BY lower_days, plant, machine_id
 LIMIT $6
