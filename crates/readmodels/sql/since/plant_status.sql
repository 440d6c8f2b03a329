SELECT * FROM readmodel.plant_status WHERE position > $1 ORDER BY position
