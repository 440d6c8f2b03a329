UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?2, error_code = ?3, error_message = ?4
WHERE command_id = ?1
