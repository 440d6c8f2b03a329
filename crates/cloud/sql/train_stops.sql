-- Failures, service starts (planned orders) and completions, in time order.
SELECT plant, machine_id, kind, state, at, scheduled_for, performed_at
  FROM cloud.maintenance_log
 WHERE ($1::smallint[] IS NULL OR plant = ANY($1))
 ORDER BY plant, machine_id, at
