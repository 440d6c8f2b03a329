-- Each model version's plant-wide track record (the registry lists it beside the version).
SELECT scope || ' ' || id || ' ' || model_version AS page_key, scope, id, model_version, failures, caught, watched,
       caught_watched, scored, covered, alerts, premature_alerts, alerts_without_failure, false_alerts,
       false_alert_onsets, judged_days,
       covered::float8 / nullif(scored, 0) AS coverage,
       abs_error_days / nullif(scored, 0) AS mae_days,
       1000 * 24 * false_alert_days / nullif(judged_days, 0) AS false_alert_hours_per_1000_machine_days,
       position
FROM readmodel.track_record WHERE scope = 'plant' ORDER BY model_version
