-- Whether the latest prediction called its machine due (`MaintenancePredicted::due`: the
-- model's own rule, decided by the scorer), kept so a restarted projection counts the same
-- machines as due. NULL: the prediction did not say (written before predictions did); the
-- lower bound within 7 days decides then.
ALTER TABLE readmodel.maintenance ADD COLUMN due boolean;
