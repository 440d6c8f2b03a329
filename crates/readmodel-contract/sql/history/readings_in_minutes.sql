-- How many readings the minute aggregates cover, over every sensor and minute kept.
SELECT coalesce(sum(count), 0)::bigint FROM readmodel.sensor_minute
