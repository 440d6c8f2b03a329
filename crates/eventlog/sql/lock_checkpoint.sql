-- Held until the batch commits, so two instances of one subscriber never apply the same events.
SELECT position, read_through FROM eventlog.checkpoints WHERE subscriber = $1 FOR UPDATE
