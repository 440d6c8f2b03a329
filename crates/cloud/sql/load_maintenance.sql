SELECT m.plant, m.machine_id, line_id, machine_type, predicted_days, lower_days, upper_days, predicted_at,
       model_version, open_order_id, open_order_kind, scheduled_for, last_performed_at, last_failure_at, position,
       due
  FROM cloud.maintenance m JOIN unnest($1::smallint[], $2::text[]) AS k(plant, machine_id)
    ON m.plant = k.plant AND m.machine_id = k.machine_id
