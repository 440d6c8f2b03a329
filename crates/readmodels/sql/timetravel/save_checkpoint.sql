INSERT INTO readmodel.timetravel_checkpoints (position, recorded_through_ms, happened_through_ms, started_through_ms, state)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (position) DO UPDATE SET recorded_through_ms = EXCLUDED.recorded_through_ms,
    happened_through_ms = EXCLUDED.happened_through_ms, started_through_ms = EXCLUDED.started_through_ms,
    state = EXCLUDED.state
