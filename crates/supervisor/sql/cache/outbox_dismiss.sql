DELETE FROM outbox WHERE command_id = ?1 AND state = 'failed'
