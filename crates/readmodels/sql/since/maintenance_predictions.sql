SELECT * FROM readmodel.maintenance_predictions WHERE position > $1 ORDER BY position
