-- Every read model starts over from an empty state at position 0.
TRUNCATE readmodel.plant, readmodel.lines, readmodel.machines, readmodel.sensors, readmodel.sensor_state,
    readmodel.sensor_history, readmodel.sensor_minute, readmodel.sensor_hour, readmodel.machine_status,
    readmodel.line_status, readmodel.plant_status, readmodel.anomalies, readmodel.maintenance,
    readmodel.maintenance_predictions, readmodel.maintenance_log, readmodel.audit, readmodel.projections,
    readmodel.timetravel_checkpoints, readmodel.timetravel_late;
