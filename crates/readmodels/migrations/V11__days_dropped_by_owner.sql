-- A day of the history is no longer dropped with ACCESS EXCLUSIVE on its parent (which
-- queued behind every open reader of the read models and held every reader behind it):
-- retention detaches it with `DETACH PARTITION … CONCURRENTLY` and drops the detached
-- table. That statement can be run neither inside a function nor by a role that does not
-- own the table, so retention runs as the read models' owner and the owner's function
-- that dropped a day for other roles goes.
DROP FUNCTION readmodel.drop_day_partition(text, date);
