SELECT count(*), coalesce(sum(octet_length(state)), 0)::bigint, (SELECT count(*) FROM readmodel.timetravel_late)
  FROM readmodel.timetravel_checkpoints
