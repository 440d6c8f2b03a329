INSERT INTO travel_answers (clock, at_ms, fetched_ms, body) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (clock, at_ms) DO UPDATE SET fetched_ms = excluded.fetched_ms, body = excluded.body
