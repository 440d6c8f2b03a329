-- Rows of readmodel.machines changed since a position, in pages: $1 is the position
-- reached, $2 the page_key of the last row read at that position (NULL: none yet).
SELECT machine_id AS page_key, machine_id, line_id, number, machine_type, description, sensors, position
FROM readmodel.machines WHERE position >= $1 AND (position > $1 OR machine_id > $2) ORDER BY position, machine_id LIMIT $3
