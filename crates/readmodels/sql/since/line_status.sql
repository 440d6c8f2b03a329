SELECT * FROM readmodel.line_status WHERE position > $1 ORDER BY position
