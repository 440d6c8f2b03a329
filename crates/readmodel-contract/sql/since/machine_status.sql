-- Rows of readmodel.machine_status changed since a position, in pages: $1 is the position
-- reached, $2 the page_key of the last row read at that position (NULL: none yet).
SELECT machine_id AS page_key, machine_id, line_id, status, sensors, reporting, stale, warning, anomalous,
       open_critical, open_major, open_minor, due_in_days, due, newest_reading, position
FROM readmodel.machine_status WHERE position >= $1 AND (position > $1 OR machine_id > $2) ORDER BY position, machine_id LIMIT $3
