-- Keeps the ?1 answers fetched last.
DELETE FROM travel_answers
 WHERE rowid NOT IN (SELECT rowid FROM travel_answers ORDER BY fetched_ms DESC LIMIT ?1)
