-- The newest rows of one read model for one machine.
SELECT body FROM rows WHERE model = ?1 AND machine_id = ?2 ORDER BY position DESC LIMIT ?3
