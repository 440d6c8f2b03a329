-- Rows of readmodel.sensors changed since a position, in pages: $1 is the position
-- reached, $2 the page_key of the last row read at that position (NULL: none yet).
SELECT sensor_id::text AS page_key, sensor_id, name, machine_id, kind, unit, normal_min, normal_max, position
FROM readmodel.sensors WHERE position >= $1 AND (position > $1 OR sensor_id::text > $2) ORDER BY position, sensor_id::text LIMIT $3
