SELECT position, state FROM readmodel.track_state WHERE name = $1
