SELECT readmodel.drop_day_partition($1, $2::date)
