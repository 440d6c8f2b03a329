SELECT last_tick FROM maintenance.scorer WHERE name = $1
