UPDATE maintenance.models SET active = false WHERE active
