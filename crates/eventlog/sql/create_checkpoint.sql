INSERT INTO eventlog.checkpoints (subscriber, position) VALUES ($1, 0) ON CONFLICT (subscriber) DO NOTHING
