-- A retried upload records its refusals once.
INSERT INTO ingest.dead_letters (gateway, upload, item, sensor, ts_ms, value, reason, raw)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bigint[], $6::float8[], $7::text[], $8::bytea[])
ON CONFLICT (upload, item) DO NOTHING
