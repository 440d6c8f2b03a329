-- Track-record rows that changed after position $1.
SELECT * FROM maintenance.track_summary WHERE position > $1 ORDER BY position, scope, id, model_version
