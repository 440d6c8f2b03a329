INSERT INTO cloud.machines (plant, machine_id, line_id, number, machine_type, description, sensors, position)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::int[], $8::bigint[])
