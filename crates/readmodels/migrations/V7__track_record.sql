-- The maintenance track record (`readmodels::track`, a projection of the log through
-- `maintenance::TrackRecord`, the fold `floorwatch eval maintenance` runs): how the
-- plant's predictions turned out, per machine, machine type and the whole plant, each per
-- model version; and every failure with the predictions that came before it. Every row
-- carries the log position of the event that last changed it.

-- scope: machine | machine_type | plant; model_version '' holds failures no prediction
-- preceded. Counts and sums (`maintenance::TrackFigures`); readers derive the shares.
-- failures: caught (due 3 to 7 days before), watched (predicted on through the week
-- before), caught_watched. scored / covered / abs_error_days: the predictions of the 14
-- days before failures, those whose interval held the truth, their absolute errors.
-- alerts (judged), premature (more than 7 days before the failure), without_failure (in
-- runs ended by a service), false (no failure within 14 days; their machine-days and the
-- times a machine became falsely due), judged_days: the machine-time judged.
CREATE TABLE readmodel.track_record (
    scope text NOT NULL,
    id text NOT NULL,
    model_version text NOT NULL,
    failures bigint NOT NULL,
    caught bigint NOT NULL,
    watched bigint NOT NULL,
    caught_watched bigint NOT NULL,
    scored bigint NOT NULL,
    covered bigint NOT NULL,
    abs_error_days double precision NOT NULL,
    alerts bigint NOT NULL,
    premature_alerts bigint NOT NULL,
    alerts_without_failure bigint NOT NULL,
    false_alerts bigint NOT NULL,
    false_alert_days double precision NOT NULL,
    false_alert_onsets bigint NOT NULL,
    judged_days double precision NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (scope, id, model_version)
);
CREATE INDEX track_record_position ON readmodel.track_record (position);

-- at_leads: the prediction at 1, 3, 7 and 14 days before the failure, each
-- {lead_days, issued_at_ms, predicted_days, lower_days, upper_days, actual_days}.
-- alert_lead_days: how long before the failure its last alert began.
CREATE TABLE readmodel.track_failures (
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
CREATE INDEX track_failures_position ON readmodel.track_failures (position);
CREATE INDEX track_failures_machine ON readmodel.track_failures (machine_id, failed_at DESC);

-- The fold's state at a log position, so a restart resumes without folding everything
-- again. The projection's own memory: not for readers.
CREATE TABLE readmodel.track_state (
    name text PRIMARY KEY,
    position bigint NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now(),
    state bytea NOT NULL
);
REVOKE ALL ON readmodel.track_state FROM floorwatch_reader;
