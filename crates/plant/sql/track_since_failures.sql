-- Failures whose record changed after position $1.
SELECT machine_id, failed_at, machine_type, model_version, caught, alert_lead_days, scored, covered, at_leads, position
  FROM maintenance.track_failures WHERE position > $1 ORDER BY position, machine_id, failed_at
