SELECT 'machine' AS level, machine_id AS id, position FROM readmodel.machine_status
UNION ALL SELECT 'line', line_id, position FROM readmodel.line_status
UNION ALL SELECT 'plant', plant_id, position FROM readmodel.plant_status
