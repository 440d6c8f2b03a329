UPDATE eventlog.checkpoints SET position = $2, read_through = $3, updated_at = now() WHERE subscriber = $1
