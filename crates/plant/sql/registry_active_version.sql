SELECT version FROM maintenance.models WHERE active
