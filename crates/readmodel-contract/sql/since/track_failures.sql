-- Rows of readmodel.track_failures changed since a position, in pages: $1 is the position
-- reached, $2 the page_key of the last row read at that position (NULL: none yet).
SELECT machine_id || ' ' || failed_at::text AS page_key, machine_id, failed_at, machine_type, model_version, caught,
       alert_lead_days, scored, covered, at_leads, position
FROM readmodel.track_failures
WHERE position >= $1 AND (position > $1 OR machine_id || ' ' || failed_at::text > $2)
ORDER BY position, machine_id || ' ' || failed_at::text LIMIT $3
