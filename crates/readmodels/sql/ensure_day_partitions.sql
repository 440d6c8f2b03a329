SELECT readmodel.ensure_day_partition($1, d) FROM unnest($2::date[]) AS d
