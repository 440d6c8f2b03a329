INSERT INTO cloud.lines (plant, line_id, number, machines, sensors, position)
SELECT $1, * FROM unnest($2::text[], $3::int[], $4::int[], $5::int[], $6::bigint[])
