UPDATE eventlog.checkpoints SET position = 0, read_through = 0 WHERE subscriber = ANY($1)
