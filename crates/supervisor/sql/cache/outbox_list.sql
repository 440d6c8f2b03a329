SELECT seq, command_id, by, command, created_at_ms, state, attempts, next_attempt_ms, error_code, error_message, position
FROM outbox ORDER BY seq
