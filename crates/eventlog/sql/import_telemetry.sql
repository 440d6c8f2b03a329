INSERT INTO eventlog.telemetry (position, stream, version, type, schema_version, payload, metadata, idempotency_key,
                                occurred_at, recorded_at, origin, origin_position, origin_recorded_at)
SELECT p, s, v, t, sv, pl, m, k, oa, now(), $10, op, ora
  FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::smallint[], $6::bytea[], $7::jsonb[], $8::text[],
              $9::timestamptz[], $11::bigint[], $12::timestamptz[]) AS u(p, s, v, t, sv, pl, m, k, oa, op, ora)
