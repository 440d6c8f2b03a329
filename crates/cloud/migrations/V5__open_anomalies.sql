-- The anomalies not yet resolved, newest first: what "open critical and major anomalies"
-- asks. They stay few while resolved ones pile up with the years, so the question costs
-- the same on the first day as on the thousandth (it read every anomaly before).
CREATE INDEX anomalies_open ON cloud.anomalies (started_at, plant, anomaly_id) WHERE state <> 'resolved';
