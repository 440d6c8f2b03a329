SELECT line_id, number, machines, sensors FROM cloud.lines WHERE plant = $1 ORDER BY number
