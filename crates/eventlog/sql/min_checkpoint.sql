SELECT min(position) FROM eventlog.checkpoints
