UPDATE eventlog.checkpoints SET position = 0 WHERE subscriber = ANY($1)
