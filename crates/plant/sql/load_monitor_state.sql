SELECT position, state FROM monitor.state WHERE name = $1
