SELECT body FROM kpi
 WHERE bucket = ?1 AND grouping = ?2 AND start_ms >= ?3 AND start_ms < ?4
   AND (?5 IS NULL OR plant IN (SELECT value FROM json_each(?5)))
 ORDER BY plant, grp, start_ms
