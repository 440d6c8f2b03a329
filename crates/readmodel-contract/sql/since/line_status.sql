-- Rows of readmodel.line_status changed since a position, in pages: $1 is the position
-- reached, $2 the page_key of the last row read at that position (NULL: none yet).
SELECT line_id AS page_key, line_id, sensors, reporting, stale, warning, anomalous, open_critical, open_major, open_minor,
       machines_due_7d, readings_per_s, newest_reading, position
FROM readmodel.line_status WHERE position >= $1 AND (position > $1 OR line_id > $2) ORDER BY position, line_id LIMIT $3
