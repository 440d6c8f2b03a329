-- Entries after ?1 up to and including ?2, in the order they came.
SELECT seq, body FROM floor_journal WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3
