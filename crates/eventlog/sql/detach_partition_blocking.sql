-- Detaches a day holding ACCESS EXCLUSIVE on its parent: only where the server cannot
-- detach concurrently.
ALTER TABLE {parent} DETACH PARTITION {partition}
