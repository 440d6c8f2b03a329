INSERT INTO readmodel.sensors (sensor_id, name, machine_id, kind, unit, normal_min, normal_max, position)
SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[], $8::bigint[])
