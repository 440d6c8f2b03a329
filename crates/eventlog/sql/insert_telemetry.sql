INSERT INTO eventlog.telemetry (position, stream, version, type, schema_version, payload, metadata, idempotency_key, occurred_at)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::smallint[], $6::bytea[], $7::jsonb[], $8::text[], $9::timestamptz[])
