SELECT m.machine_id, m.machine_type, mt.last_performed_at, mt.open_order_id, mt.scheduled_for
  FROM readmodel.machines m LEFT JOIN readmodel.maintenance mt USING (machine_id)
 ORDER BY m.machine_id
