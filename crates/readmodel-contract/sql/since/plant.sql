-- Rows of readmodel.plant changed since a position, in pages: $1 is the position
-- reached, $2 the page_key of the last row read at that position (NULL: none yet).
SELECT plant_id AS page_key, plant_id, name, lines, machines, sensors, position
FROM readmodel.plant WHERE position >= $1 AND (position > $1 OR plant_id > $2) ORDER BY position, plant_id LIMIT $3
