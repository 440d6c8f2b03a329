-- Rows of readmodel.plant_status changed since a position, in pages: $1 is the position
-- reached, $2 the page_key of the last row read at that position (NULL: none yet).
SELECT plant_id AS page_key, plant_id, sensors, reporting, stale, warning, anomalous, open_critical, open_major, open_minor,
       machines_due_7d, readings_per_s, newest_reading, position
FROM readmodel.plant_status WHERE position >= $1 AND (position > $1 OR plant_id > $2) ORDER BY position, plant_id LIMIT $3
