INSERT INTO readmodel.machines (machine_id, line_id, number, machine_type, description, sensors, position)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::bigint[])
