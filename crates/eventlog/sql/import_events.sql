INSERT INTO eventlog.events (position, stream, version, type, schema_version, payload, metadata, idempotency_key,
                             recorded_at, origin, origin_position, origin_recorded_at)
SELECT p, s, v, t, sv, pl, m, k, now(), $9, op, ora
  FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::smallint[], $6::jsonb[], $7::jsonb[], $8::text[],
              $10::bigint[], $11::timestamptz[]) AS u(p, s, v, t, sv, pl, m, k, op, ora)
