UPDATE maintenance.models SET active = true WHERE version = $1
