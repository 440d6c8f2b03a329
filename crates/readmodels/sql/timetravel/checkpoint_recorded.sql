-- The newest checkpoint whose every event was recorded at or before $1 and that the live
-- projection has stored through $2.
SELECT position, recorded_through_ms, happened_through_ms, started_through_ms, state
  FROM readmodel.timetravel_checkpoints
 WHERE recorded_through_ms <= $1 AND position <= $2
 ORDER BY recorded_through_ms DESC, position DESC
 LIMIT 1
