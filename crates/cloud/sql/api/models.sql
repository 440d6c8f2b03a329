SELECT version, created_at, registered_at, metrics, active FROM cloud.models ORDER BY registered_at DESC, version
