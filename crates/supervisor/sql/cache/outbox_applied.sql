-- Accepted commands whose effect the read models now show.
DELETE FROM outbox WHERE state = 'sent' AND position <= ?1
