-- Keeps the newest $2 snapshots.
DELETE FROM monitor.state
WHERE name = $1 AND position < ALL (
    SELECT position FROM monitor.state WHERE name = $1 ORDER BY position DESC LIMIT $2
)
