-- Keeps the refused bodies of the newest $1 dead letters that have one.
UPDATE ingest.dead_letters SET raw = NULL
WHERE raw IS NOT NULL AND id <= (
    SELECT id FROM ingest.dead_letters WHERE raw IS NOT NULL ORDER BY id DESC OFFSET $1 LIMIT 1
)
