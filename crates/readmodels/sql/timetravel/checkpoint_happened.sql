-- The newest checkpoint whose every event had happened at or before $1 (and at or before
-- position $2).
SELECT position, recorded_through_ms, happened_through_ms, started_through_ms, state
  FROM readmodel.timetravel_checkpoints
 WHERE happened_through_ms <= $1 AND position <= $2
 ORDER BY happened_through_ms DESC, position DESC
 LIMIT 1
