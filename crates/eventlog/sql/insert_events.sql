INSERT INTO eventlog.events (position, stream, version, type, schema_version, payload, metadata, idempotency_key)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::smallint[], $6::jsonb[], $7::jsonb[], $8::text[])
