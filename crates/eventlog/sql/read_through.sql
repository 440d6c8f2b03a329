SELECT coalesce(min(read_through), 0), count(*) FROM eventlog.checkpoints WHERE subscriber = ANY($1)
