-- Whether a machine is due for service, as the live projection judges it
-- (`live::model::is_due`), so that readers show the projection's answer instead of
-- applying the rule again. Rows written before this column existed get the rule once here
-- (the lower bound of the latest prediction within 7 days); from now on the projection
-- writes it.
ALTER TABLE readmodel.machine_status ADD COLUMN due boolean NOT NULL DEFAULT false;
UPDATE readmodel.machine_status SET due = coalesce(due_in_days <= 7, false);
