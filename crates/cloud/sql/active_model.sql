SELECT version, metrics, model FROM cloud.models WHERE active
