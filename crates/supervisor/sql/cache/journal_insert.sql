INSERT INTO floor_journal (at_ms, bytes, body) VALUES (?1, ?2, ?3)
