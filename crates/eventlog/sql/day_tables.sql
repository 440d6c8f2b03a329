-- The day tables of partitioned table $1 (schema-qualified): every table in its schema
-- named after it and a day (`parent_YYYYMMDD`), in name order (oldest first), with where
-- each stands: attached (false), detach pending (true) or detached (NULL: left by a drop
-- that stopped after the detach; a day is only ever created attached).
SELECT c.relname::text, i.inhdetachpending
  FROM pg_class p
  JOIN pg_class c ON c.relnamespace = p.relnamespace AND c.relkind = 'r'
                 AND c.relname ~ ('^' || p.relname || '_[0-9]{8}$')
  LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = p.oid
 WHERE p.oid = $1::text::regclass
 ORDER BY c.relname
