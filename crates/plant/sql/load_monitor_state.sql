-- The newest snapshot at or before the monitor's checkpoint.
SELECT position, state FROM monitor.state WHERE name = $1 AND position <= $2 ORDER BY position DESC LIMIT 1
