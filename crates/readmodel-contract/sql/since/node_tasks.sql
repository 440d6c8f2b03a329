-- Rows of readmodel.node_tasks changed since a position, in pages: $1 is the position
-- reached, $2 the page_key of the last row read at that position (NULL: none yet).
SELECT task AS page_key, task, state, since, restarts, last_error, lag_events, updated_at, position
FROM readmodel.node_tasks WHERE position >= $1 AND (position > $1 OR task > $2) ORDER BY position, task LIMIT $3
