INSERT INTO kpi (bucket, grouping, plant, grp, start_ms, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (bucket, grouping, plant, grp, start_ms) DO UPDATE SET body = excluded.body
