-- Detaches a day without ACCESS EXCLUSIVE on its parent: it waits for the transactions
-- that use the parent, but no reader or writer waits for it. Outside any transaction.
ALTER TABLE {parent} DETACH PARTITION {partition} CONCURRENTLY
