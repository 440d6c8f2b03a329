SELECT 1 FROM eventlog.checkpoints WHERE subscriber = $1 FOR UPDATE
