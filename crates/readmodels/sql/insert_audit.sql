INSERT INTO readmodel.audit (position, recorded_at, stream, event_type, machine_id, actor, summary)
SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
ON CONFLICT (position) DO NOTHING
