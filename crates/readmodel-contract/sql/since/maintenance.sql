-- Rows of readmodel.maintenance changed since a position, in pages: $1 is the position
-- reached, $2 the page_key of the last row read at that position (NULL: none yet).
SELECT machine_id AS page_key, machine_id, predicted_days, lower_days, upper_days, predicted_at, model_version, open_order_id,
       open_order_kind, scheduled_for, last_performed_at, position
FROM readmodel.maintenance WHERE position >= $1 AND (position > $1 OR machine_id > $2) ORDER BY position, machine_id LIMIT $3
