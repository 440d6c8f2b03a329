-- Keeps the newest few snapshots of a stream.
DELETE FROM eventlog.snapshots
 WHERE stream = $1
   AND version < (SELECT min(version) FROM (SELECT version FROM eventlog.snapshots WHERE stream = $1 ORDER BY version DESC LIMIT $2) newest)
