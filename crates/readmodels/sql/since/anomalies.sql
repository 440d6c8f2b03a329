SELECT * FROM readmodel.anomalies WHERE position > $1 ORDER BY position
