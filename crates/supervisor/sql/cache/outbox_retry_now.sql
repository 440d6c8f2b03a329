-- The plant is reachable again: send what is queued now rather than after the back-off.
UPDATE outbox SET next_attempt_ms = ?1 WHERE state = 'pending' AND next_attempt_ms > ?1
