INSERT INTO readmodel.forwarding AS f (plant_id, state, acknowledged, lag_events, lag_seconds, cloud_position,
                                       last_shipped_at, last_error, last_error_at, updated_at, position)
SELECT $1, $2, $3,
       greatest(h.position - $3, 0),
       -- now() is this transaction's start: an event appended since is newer, and lags nothing.
       greatest(coalesce(extract(epoch FROM now() - (SELECT min(recorded_at) FROM eventlog.all_events WHERE position = $3 + 1)), 0), 0),
       $4, $5, $6, $7, now(), h.position
  FROM eventlog.head h
ON CONFLICT (plant_id) DO UPDATE SET
    state = EXCLUDED.state, acknowledged = EXCLUDED.acknowledged, lag_events = EXCLUDED.lag_events,
    lag_seconds = EXCLUDED.lag_seconds, cloud_position = coalesce(EXCLUDED.cloud_position, f.cloud_position),
    last_shipped_at = coalesce(EXCLUDED.last_shipped_at, f.last_shipped_at),
    last_error = EXCLUDED.last_error, last_error_at = coalesce(EXCLUDED.last_error_at, f.last_error_at),
    updated_at = EXCLUDED.updated_at, position = EXCLUDED.position
RETURNING position
