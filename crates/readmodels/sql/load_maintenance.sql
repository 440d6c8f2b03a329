SELECT machine_id, predicted_days, lower_days, upper_days, predicted_at, model_version, open_order_id,
       open_order_kind, scheduled_for, last_performed_at, position, due
  FROM readmodel.maintenance
