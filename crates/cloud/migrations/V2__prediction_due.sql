-- Whether a machine's latest prediction called it due by its model's alert rule (NULL: a
-- prediction from before the scorer said so), so the cloud's maintenance list decides
-- "due" as the plant does. Rows written before this are filled in by a rebuild.
ALTER TABLE cloud.maintenance ADD COLUMN due boolean;
