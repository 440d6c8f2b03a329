SELECT version, created_at, registered_at, metrics, active FROM maintenance.models ORDER BY registered_at, version
