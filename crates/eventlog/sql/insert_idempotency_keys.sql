INSERT INTO eventlog.idempotency_keys (key, stream, first_position, last_position, first_version, last_version, expires_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::timestamptz[])
