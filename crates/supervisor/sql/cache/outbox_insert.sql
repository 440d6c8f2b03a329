INSERT INTO outbox (command_id, by, command, created_at_ms, state, next_attempt_ms) VALUES (?1, ?2, ?3, ?4, 'pending', ?4)
