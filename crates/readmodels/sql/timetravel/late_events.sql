-- Events after position $1 and up to $2 that arrived late and had happened at or before $3.
SELECT position FROM readmodel.timetravel_late
 WHERE position > $1 AND position <= $2 AND occurred_ms <= $3
 ORDER BY position
