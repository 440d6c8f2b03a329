-- How far the projections have got: every read model reflects the log up to the
-- slowest one (first column); the fastest has got to the second.
SELECT coalesce(min(position), 0)::bigint, coalesce(max(position), 0)::bigint FROM readmodel.projections
