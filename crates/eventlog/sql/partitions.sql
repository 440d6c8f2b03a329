-- The partitions of a partitioned table ($1, schema-qualified), in name order (day
-- partitions end in their day, so oldest first), with the space each takes, indexes
-- included.
SELECT c.relname, pg_total_relation_size(c.oid)
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = $1::text::regclass
 ORDER BY c.relname
