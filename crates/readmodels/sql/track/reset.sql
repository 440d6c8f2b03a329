DELETE FROM readmodel.track_record;
DELETE FROM readmodel.track_failures;
DELETE FROM readmodel.track_state WHERE name = 'readmodel-track-record';
