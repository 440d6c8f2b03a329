SELECT position, memory FROM readmodel.projections WHERE name = $1
