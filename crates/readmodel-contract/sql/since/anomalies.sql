-- Rows of readmodel.anomalies changed since a position, in pages: $1 is the position
-- reached, $2 the page_key of the last row read at that position (NULL: none yet).
SELECT anomaly_id AS page_key, anomaly_id, machine_id, line_id, severity, state, score, sensors, explanation, started_at, updated_at,
       resolved_at, acknowledged_by, acknowledged_at, shelved_by, shelved_until, notes, position
FROM readmodel.anomalies WHERE position >= $1 AND (position > $1 OR anomaly_id > $2) ORDER BY position, anomaly_id LIMIT $3
