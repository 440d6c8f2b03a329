UPDATE eventlog.checkpoints SET position = $2, updated_at = now() WHERE subscriber = $1
