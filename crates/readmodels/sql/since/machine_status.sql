SELECT * FROM readmodel.machine_status WHERE position > $1 ORDER BY position
