-- Rows of readmodel.lines changed since a position, in pages: $1 is the position
-- reached, $2 the page_key of the last row read at that position (NULL: none yet).
SELECT line_id AS page_key, line_id, number, machines, sensors, position
FROM readmodel.lines WHERE position >= $1 AND (position > $1 OR line_id > $2) ORDER BY position, line_id LIMIT $3
