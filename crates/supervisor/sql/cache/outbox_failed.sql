UPDATE outbox SET state = 'failed', attempts = attempts + 1, error_code = ?2, error_message = ?3 WHERE command_id = ?1
