-- Every model with its plant-wide track record (the figures of its own predictions).
SELECT m.version, m.created_at, m.registered_at, m.metrics, m.active, t.figures
  FROM maintenance.models m
  LEFT JOIN maintenance.track_record t ON t.scope = 'plant' AND t.model_version = m.version
 ORDER BY m.registered_at, m.version
