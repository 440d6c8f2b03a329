-- Oldest first: what pruning walks to find where the kept journal starts.
SELECT seq, at_ms, bytes FROM floor_journal ORDER BY seq
