UPDATE outbox SET state = 'sent', attempts = attempts + 1, position = ?2, error_code = NULL, error_message = NULL
WHERE command_id = ?1
