-- The position every projection has applied through: every read-model row changed by an
-- event at or before it is committed.
SELECT coalesce(min(position), 0) FROM cloud.projections WHERE name = ANY($1)
