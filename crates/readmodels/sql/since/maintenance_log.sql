SELECT * FROM readmodel.maintenance_log WHERE position > $1 ORDER BY position
