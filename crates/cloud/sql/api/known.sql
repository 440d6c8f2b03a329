-- Which of the named things the cloud knows: plants ($1), a machine ($2, $3), a line
-- ($2, $4), a machine type ($2, $5). NULL parameters are not asked about.
SELECT (SELECT count(*) FROM cloud.plants WHERE plant = ANY($1))::int,
       ($3::text IS NULL OR EXISTS (SELECT 1 FROM cloud.machines WHERE plant = $2 AND machine_id = $3)),
       ($4::text IS NULL OR EXISTS (SELECT 1 FROM cloud.lines WHERE plant = $2 AND line_id = $4)),
       ($5::text IS NULL OR EXISTS (SELECT 1 FROM cloud.groups WHERE plant = $2 AND machine_type = $5))
