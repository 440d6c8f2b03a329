DELETE FROM maintenance.track_record;
DELETE FROM maintenance.track_failures;
DELETE FROM maintenance.track_state WHERE name = 'maintenance-track-record';
