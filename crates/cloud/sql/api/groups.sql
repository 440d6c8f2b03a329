SELECT line_id, machine_type, machines, sensors FROM cloud.groups WHERE plant = $1 ORDER BY line_id, machine_type
