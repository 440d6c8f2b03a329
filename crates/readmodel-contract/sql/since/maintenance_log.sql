-- Rows of readmodel.maintenance_log changed since a position, in pages: $1 is the position
-- reached, $2 the page_key of the last row read at that position (NULL: none yet).
SELECT order_id AS page_key, order_id, machine_id, kind, state, scheduled_for, scheduled_by, performed_at, performed_by, note, performed_note, position
FROM readmodel.maintenance_log WHERE position >= $1 AND (position > $1 OR order_id > $2) ORDER BY position, order_id LIMIT $3
