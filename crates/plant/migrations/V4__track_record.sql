-- The maintenance track record (`plant::track_record`, a projection of the log): how the
-- plant's predictions turned out, per machine, machine type and the whole plant, each per
-- model version, and every failure with the predictions that came before it. Every row
-- carries the log position of the event that last changed it ("what changed since N").

-- scope: machine | machine_type | plant; model_version '' holds failures no prediction
-- preceded. figures: `maintenance::TrackFigures` (counts and sums; the view below derives
-- the shares).
CREATE TABLE maintenance.track_record (
    scope text NOT NULL,
    id text NOT NULL,
    model_version text NOT NULL,
    figures jsonb NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (scope, id, model_version)
);
CREATE INDEX track_record_position ON maintenance.track_record (position);

-- at_leads: the prediction at 1, 3, 7 and 14 days before the failure, each
-- {lead_days, issued_at, predicted_days, lower_days, upper_days, actual_days}.
CREATE TABLE maintenance.track_failures (
    machine_id text NOT NULL,
    failed_at timestamptz NOT NULL,
    machine_type text NOT NULL,
    model_version text,
    caught boolean NOT NULL,
    alert_lead_days double precision,
    scored bigint NOT NULL,
    covered bigint NOT NULL,
    at_leads jsonb NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (machine_id, failed_at)
);
CREATE INDEX track_failures_position ON maintenance.track_failures (position);

-- The fold's state at a log position, so a restart resumes without folding everything again.
CREATE TABLE maintenance.track_state (
    name text PRIMARY KEY,
    position bigint NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now(),
    state bytea NOT NULL
);

-- The figures a planner reads: share of failures alerted in time (3 to 7 days ahead),
-- interval coverage and mean absolute error (days) of the predictions of the 14 days
-- before failures, false alerts per 1,000 machine-days.
CREATE VIEW maintenance.track_summary AS
SELECT scope, id, model_version,
       (figures->>'failures')::bigint AS failures,
       (figures->>'caught')::bigint AS caught,
       (figures->>'caught')::float8 / nullif((figures->>'failures')::float8, 0) AS caught_share,
       (figures->>'scored')::bigint AS scored,
       (figures->>'covered')::float8 / nullif((figures->>'scored')::float8, 0) AS coverage,
       (figures->>'abs_error_sum')::float8 / nullif((figures->>'scored')::float8, 0) AS mae_days,
       (figures->>'alerts')::bigint AS alerts,
       (figures->>'false_alerts')::bigint AS false_alerts,
       (figures->>'judged_time')::float8 AS judged_days,
       1000 * 24 * (figures->>'false_alert_time')::float8 / nullif((figures->>'judged_time')::float8, 0)
           AS false_alert_hours_per_1000_machine_days,
       1000 * (figures->>'false_alert_onsets')::float8 / nullif((figures->>'judged_time')::float8, 0)
           AS false_alert_onsets_per_1000_machine_days,
       position
  FROM maintenance.track_record;
