-- Keeps the newest $1 (ids are handed out in order; a gap only keeps fewer).
DELETE FROM ingest.dead_letters WHERE id <= (SELECT max(id) FROM ingest.dead_letters) - $1
