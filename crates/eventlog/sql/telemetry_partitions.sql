-- Every telemetry partition, oldest first (names are telemetry_YYYYMMDD).
SELECT c.relname
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'eventlog.telemetry'::regclass
 ORDER BY c.relname
