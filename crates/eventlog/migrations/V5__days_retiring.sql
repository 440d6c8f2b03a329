-- A day of telemetry that retention is dropping. The drop no longer takes ACCESS EXCLUSIVE
-- on eventlog.telemetry (which queued behind every open reader of the log and held every
-- reader and writer behind it): the day is detached with `DETACH PARTITION … CONCURRENTLY`
-- and the detached table dropped. That statement runs outside any transaction, so it
-- cannot run under the head as the old drop did; instead retention records the day here
-- under the head, in the transaction that checked every subscriber has read it, and from
-- that commit on writers treat the day as missing (`MissingPartitions`, retried), so no
-- event lands in a day after its check. The row goes once the table is gone; a row left
-- by a run that stopped half-way tells the next run to finish (FINALIZE, then DROP).
CREATE TABLE eventlog.retiring_days (
    day date PRIMARY KEY,
    since timestamptz NOT NULL DEFAULT now()
);

-- Retention runs as the log's owner: `DETACH … CONCURRENTLY` can be run neither inside a
-- function nor by a role that does not own the table, so the owner's function that
-- dropped a day for other roles (with ACCESS EXCLUSIVE on the parent) goes.
DROP FUNCTION eventlog.drop_telemetry_partition(date);
