UPDATE cloud.models SET active = true WHERE version = $1
