-- An accepted command whose effect the read models now show.
DELETE FROM outbox WHERE command_id = ?1 AND state = 'sent'
