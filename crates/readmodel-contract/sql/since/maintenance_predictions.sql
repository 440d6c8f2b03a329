-- Rows of readmodel.maintenance_predictions changed since a position, in pages: $1 is the position
-- reached, $2 the page_key of the last row read at that position (NULL: none yet).
SELECT machine_id || ' ' || predicted_at::text AS page_key, machine_id, predicted_at, days, lower_days, upper_days, model_version, position
FROM readmodel.maintenance_predictions WHERE position >= $1 AND (position > $1 OR machine_id || ' ' || predicted_at::text > $2) ORDER BY position, machine_id || ' ' || predicted_at::text LIMIT $3
