-- One task's state as the node's supervisor reports it; a new position only when
-- something a reader shows changed, so an unchanged heartbeat wakes no one.
INSERT INTO readmodel.node_tasks AS t (task, state, since, restarts, last_error, lag_events, updated_at, position)
VALUES ($1, $2, $3, $4, $5, $6, now(), nextval('readmodel.node_task_position'))
ON CONFLICT (task) DO UPDATE SET
    state = EXCLUDED.state, since = EXCLUDED.since, restarts = EXCLUDED.restarts, last_error = EXCLUDED.last_error,
    lag_events = EXCLUDED.lag_events, updated_at = EXCLUDED.updated_at, position = EXCLUDED.position
WHERE (t.state, t.since, t.restarts, t.last_error, t.lag_events)
      IS DISTINCT FROM (EXCLUDED.state, EXCLUDED.since, EXCLUDED.restarts, EXCLUDED.last_error, EXCLUDED.lag_events)
RETURNING position
