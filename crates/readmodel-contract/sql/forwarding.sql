SELECT state, acknowledged, lag_events, lag_seconds, updated_at, last_error FROM readmodel.forwarding LIMIT 1
