-- Entries after ?1 received at or before ?2, in the order they came.
SELECT seq, body FROM floor_journal WHERE seq > ?1 AND at_ms <= ?2 ORDER BY seq LIMIT ?3
