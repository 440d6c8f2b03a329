UPDATE cloud.models SET active = false WHERE active AND version <> $1
