INSERT INTO cloud.plant_status AS p (plant, readings, newest_reading, position)
SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::timestamptz[], $4::bigint[])
ON CONFLICT (plant) DO UPDATE SET readings = p.readings + EXCLUDED.readings,
    newest_reading = greatest(p.newest_reading, EXCLUDED.newest_reading),
    position = greatest(p.position, EXCLUDED.position)
