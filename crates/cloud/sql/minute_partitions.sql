SELECT c.relname
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'cloud.sensor_minute'::regclass
 ORDER BY c.relname
