SELECT max(newest_reading) FROM readmodel.plant_status
