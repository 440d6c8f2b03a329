-- Rows of readmodel.audit changed since a position, in pages: $1 is the position
-- reached, $2 the page_key of the last row read at that position (NULL: none yet).
SELECT position::text AS page_key, position, recorded_at, stream, event_type, machine_id, actor, summary
FROM readmodel.audit WHERE position >= $1 AND (position > $1 OR position::text > $2) ORDER BY position, position::text LIMIT $3
