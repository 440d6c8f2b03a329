INSERT INTO maintenance.track_record (scope, id, model_version, figures, position)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::bigint[])
ON CONFLICT (scope, id, model_version) DO UPDATE SET figures = EXCLUDED.figures, position = EXCLUDED.position
