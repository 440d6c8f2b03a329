INSERT INTO readmodel.track_record (scope, id, model_version, failures, caught, watched, caught_watched, scored,
    covered, abs_error_days, alerts, premature_alerts, alerts_without_failure, false_alerts, false_alert_days,
    false_alert_onsets, judged_days, position)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[],
    $8::bigint[], $9::bigint[], $10::float8[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[],
    $15::float8[], $16::bigint[], $17::float8[], $18::bigint[])
ON CONFLICT (scope, id, model_version) DO UPDATE SET failures = EXCLUDED.failures, caught = EXCLUDED.caught,
    watched = EXCLUDED.watched, caught_watched = EXCLUDED.caught_watched, scored = EXCLUDED.scored,
    covered = EXCLUDED.covered, abs_error_days = EXCLUDED.abs_error_days, alerts = EXCLUDED.alerts,
    premature_alerts = EXCLUDED.premature_alerts, alerts_without_failure = EXCLUDED.alerts_without_failure,
    false_alerts = EXCLUDED.false_alerts, false_alert_days = EXCLUDED.false_alert_days,
    false_alert_onsets = EXCLUDED.false_alert_onsets, judged_days = EXCLUDED.judged_days, position = EXCLUDED.position
