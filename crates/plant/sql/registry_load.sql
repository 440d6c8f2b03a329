SELECT model FROM maintenance.models WHERE version = $1
