INSERT INTO cloud.groups (plant, line_id, machine_type, machines, sensors)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::int[])
