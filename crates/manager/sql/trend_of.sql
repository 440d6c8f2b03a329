-- The stored trend of the machine that covers the range best: the exact one, else the
-- newest that overlaps it.
SELECT body FROM trend
 WHERE machine_id = ?1 AND from_ms < ?3 AND to_ms > ?2
 ORDER BY (from_ms = ?2 AND to_ms = ?3) DESC, to_ms DESC
 LIMIT 1
