INSERT INTO readmodel.lines (line_id, number, machines, sensors, position)
SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::int[], $5::bigint[])
