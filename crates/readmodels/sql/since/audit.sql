SELECT * FROM readmodel.audit WHERE position > $1 ORDER BY position
