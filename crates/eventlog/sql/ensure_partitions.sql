SELECT eventlog.ensure_telemetry_partition(d) FROM unnest($1::date[]) AS d
