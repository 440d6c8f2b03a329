SELECT eventlog.drop_telemetry_partition($1::date)
