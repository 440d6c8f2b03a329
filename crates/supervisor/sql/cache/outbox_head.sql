-- The oldest command still to send: commands go out in the order they were taken.
SELECT seq, command_id, by, command, created_at_ms, state, attempts, next_attempt_ms, error_code, error_message, position
FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT 1
