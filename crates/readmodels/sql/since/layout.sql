-- The layout tables change together (a new LayoutConfigured replaces them all).
SELECT 'plant' AS level, plant_id AS id, position FROM readmodel.plant WHERE position > $1
UNION ALL SELECT 'line', line_id, position FROM readmodel.lines WHERE position > $1
UNION ALL SELECT 'machine', machine_id, position FROM readmodel.machines WHERE position > $1
UNION ALL SELECT 'sensor', sensor_id::text, position FROM readmodel.sensors WHERE position > $1
