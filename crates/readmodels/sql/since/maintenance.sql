SELECT * FROM readmodel.maintenance WHERE position > $1 ORDER BY position
