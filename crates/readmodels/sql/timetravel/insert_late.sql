INSERT INTO readmodel.timetravel_late (position, occurred_ms)
SELECT * FROM unnest($1::bigint[], $2::bigint[])
ON CONFLICT (position) DO NOTHING
