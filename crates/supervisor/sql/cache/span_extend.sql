-- Extends the newest span to ?1 when it ended at most ?2 ms before (the app kept
-- following the plant); says whether it did.
UPDATE floor_spans SET to_ms = ?1
 WHERE from_ms = (SELECT max(from_ms) FROM floor_spans) AND to_ms <= ?1 AND ?1 - to_ms <= ?2
