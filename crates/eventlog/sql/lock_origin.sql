-- Held until the import commits: one plant's batches are stored one after the other.
SELECT position, cloud_position FROM eventlog.origins WHERE origin = $1 FOR UPDATE
