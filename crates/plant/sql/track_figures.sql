SELECT scope, id, model_version, figures, position FROM maintenance.track_record
 WHERE scope = $1 AND id = $2 ORDER BY model_version
