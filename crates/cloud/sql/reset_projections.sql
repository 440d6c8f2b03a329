-- Every row a projection of the cloud's log wrote (not the model registry).
TRUNCATE cloud.plants, cloud.lines, cloud.machines, cloud.sensors, cloud.groups, cloud.kpi_hour, cloud.kpi_day,
         cloud.plant_status, cloud.sensor_hour, cloud.sensor_day, cloud.sensor_minute, cloud.anomalies,
         cloud.maintenance, cloud.predictions, cloud.maintenance_log, cloud.projections;
