-- Forgets what no instant at or after $1 (ms) can need. An instant starts from the newest
-- checkpoint wholly before it on its clock; both clocks only grow with the position, so
-- every instant from $1 on starts at or after the checkpoint each clock would start from
-- at $1, and the late list is read only after the checkpoint started from. Nothing goes
-- while either clock has no checkpoint before $1.
WITH keep AS (
    SELECT (SELECT position FROM readmodel.timetravel_checkpoints
             WHERE recorded_through_ms <= $1
             ORDER BY recorded_through_ms DESC, position DESC LIMIT 1) AS known,
           (SELECT position FROM readmodel.timetravel_checkpoints
             WHERE happened_through_ms <= $1
             ORDER BY happened_through_ms DESC, position DESC LIMIT 1) AS happened
), checkpoints AS (
    DELETE FROM readmodel.timetravel_checkpoints c USING keep
     WHERE keep.known IS NOT NULL AND keep.happened IS NOT NULL
       AND c.position < least(keep.known, keep.happened)
    RETURNING 1
), late AS (
    DELETE FROM readmodel.timetravel_late l USING keep
     WHERE keep.known IS NOT NULL AND keep.happened IS NOT NULL
       AND l.position <= least(keep.known, keep.happened)
    RETURNING 1
)
SELECT (SELECT count(*) FROM checkpoints), (SELECT count(*) FROM late)
