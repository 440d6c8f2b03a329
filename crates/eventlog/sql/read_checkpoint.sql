SELECT position FROM eventlog.checkpoints WHERE subscriber = $1
