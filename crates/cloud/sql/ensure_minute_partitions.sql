SELECT cloud.ensure_minute_partition(d) FROM unnest($1::date[]) AS d
