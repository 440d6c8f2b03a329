-- Finds the dead letters that keep a refused body, newest first, so only the newest few
-- keep theirs.
CREATE INDEX dead_letters_with_body ON ingest.dead_letters (id) WHERE raw IS NOT NULL;
