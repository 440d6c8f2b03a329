INSERT INTO cloud.sensors (plant, sensor_id, name, machine_id, kind, unit, normal_min, normal_max, position)
SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::float8[],
                         $9::bigint[])
