SELECT position, memory FROM cloud.projections WHERE name = $1
