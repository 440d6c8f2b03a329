SELECT position, state FROM maintenance.track_state WHERE name = $1
