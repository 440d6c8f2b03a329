-- The live projection starts over from an empty state at position 0 (the history
-- projection's tables and row are left alone).
TRUNCATE readmodel.plant, readmodel.lines, readmodel.machines, readmodel.sensors, readmodel.sensor_state,
    readmodel.machine_status, readmodel.line_status, readmodel.plant_status, readmodel.anomalies,
    readmodel.maintenance, readmodel.maintenance_predictions, readmodel.maintenance_log, readmodel.audit,
    readmodel.timetravel_checkpoints, readmodel.timetravel_late;
DELETE FROM readmodel.projections WHERE name = 'readmodel-live';
