-- The plant's read models: what the supervisor's app reads. Every table is built by a
-- projection from the event log and can be dropped and rebuilt from it. Every row
-- carries `position`: the log position of the event that last changed it, so
-- `WHERE position > N` is "what changed since N" for every table.
CREATE SCHEMA IF NOT EXISTS readmodel;

-- How far each projection has got, readable by clients that cannot read the log.
CREATE TABLE readmodel.projections (
    name text PRIMARY KEY,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- What the projection keeps in memory between batches, so it resumes exactly.
    memory jsonb NOT NULL DEFAULT '{}'
);

-- The plant's layout (from `LayoutConfigured`).
CREATE TABLE readmodel.plant (
    plant_id text PRIMARY KEY,
    name text NOT NULL,
    lines integer NOT NULL,
    machines integer NOT NULL,
    sensors integer NOT NULL,
    position bigint NOT NULL
);

CREATE TABLE readmodel.lines (
    line_id text PRIMARY KEY,
    number integer NOT NULL,
    machines integer NOT NULL,
    sensors integer NOT NULL,
    position bigint NOT NULL
);

CREATE TABLE readmodel.machines (
    machine_id text PRIMARY KEY,
    line_id text NOT NULL,
    number integer NOT NULL,
    machine_type text NOT NULL,
    description text NOT NULL,
    sensors integer NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX machines_line ON readmodel.machines (line_id);

CREATE TABLE readmodel.sensors (
    sensor_id integer PRIMARY KEY,
    name text NOT NULL UNIQUE,
    machine_id text NOT NULL,
    kind text NOT NULL,
    unit text NOT NULL,
    normal_min double precision NOT NULL,
    normal_max double precision NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX sensors_machine ON readmodel.sensors (machine_id);

-- Last value of every sensor. status: ok | warning (outside its normal range) |
-- anomalous (in an open anomaly) | stale (no reading for stale_after while the plant's
-- other sensors kept reporting).
CREATE TABLE readmodel.sensor_state (
    sensor_id integer PRIMARY KEY,
    machine_id text NOT NULL,
    value double precision NOT NULL,
    ts timestamptz NOT NULL,
    status text NOT NULL,
    position bigint NOT NULL
) WITH (fillfactor = 70);

-- Raw readings for drill-down charts: one row per sensor per minute holding that
-- minute's readings (`telemetry::history` chunks, see ARCHITECTURE.md), one partition per
-- day, kept for the telemetry retention window.
CREATE TABLE readmodel.sensor_history (
    sensor_id integer NOT NULL,
    minute timestamptz NOT NULL,
    readings bytea NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (sensor_id, minute)
) PARTITION BY RANGE (minute);
CREATE INDEX sensor_history_position ON readmodel.sensor_history (position);

-- Aggregates per sensor per minute (partitioned by day, kept longer than raw history)
-- and per hour (kept forever).
CREATE TABLE readmodel.sensor_minute (
    sensor_id integer NOT NULL,
    minute timestamptz NOT NULL,
    count integer NOT NULL,
    min double precision NOT NULL,
    max double precision NOT NULL,
    mean double precision NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (sensor_id, minute)
) PARTITION BY RANGE (minute);

CREATE TABLE readmodel.sensor_hour (
    sensor_id integer NOT NULL,
    hour timestamptz NOT NULL,
    count integer NOT NULL,
    min double precision NOT NULL,
    max double precision NOT NULL,
    mean double precision NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (sensor_id, hour)
);

-- Roll-ups. status: ok | warning | anomaly | service (due within 7 days) | stale.
CREATE TABLE readmodel.machine_status (
    machine_id text PRIMARY KEY,
    line_id text NOT NULL,
    status text NOT NULL,
    sensors integer NOT NULL,
    reporting integer NOT NULL,
    stale integer NOT NULL,
    warning integer NOT NULL,
    anomalous integer NOT NULL,
    open_critical integer NOT NULL,
    open_major integer NOT NULL,
    open_minor integer NOT NULL,
    due_in_days double precision,
    newest_reading timestamptz,
    position bigint NOT NULL
) WITH (fillfactor = 70);

CREATE TABLE readmodel.line_status (
    line_id text PRIMARY KEY,
    sensors integer NOT NULL,
    reporting integer NOT NULL,
    stale integer NOT NULL,
    warning integer NOT NULL,
    anomalous integer NOT NULL,
    open_critical integer NOT NULL,
    open_major integer NOT NULL,
    open_minor integer NOT NULL,
    machines_due_7d integer NOT NULL,
    readings_per_s double precision NOT NULL,
    newest_reading timestamptz,
    position bigint NOT NULL
) WITH (fillfactor = 70);

-- freshness = now − newest_reading, computed by the reader.
CREATE TABLE readmodel.plant_status (
    plant_id text PRIMARY KEY,
    sensors integer NOT NULL,
    reporting integer NOT NULL,
    stale integer NOT NULL,
    warning integer NOT NULL,
    anomalous integer NOT NULL,
    open_critical integer NOT NULL,
    open_major integer NOT NULL,
    open_minor integer NOT NULL,
    machines_due_7d integer NOT NULL,
    readings_per_s double precision NOT NULL,
    newest_reading timestamptz,
    position bigint NOT NULL
) WITH (fillfactor = 70);

-- Anomaly episodes. state: new | acknowledged | shelved | resolved.
-- severity: minor | major | critical.
CREATE TABLE readmodel.anomalies (
    anomaly_id text PRIMARY KEY,
    machine_id text NOT NULL,
    line_id text NOT NULL,
    severity text NOT NULL,
    state text NOT NULL,
    score double precision NOT NULL,
    -- Sensors involved, each with observed, expected band, test and score (JSON array).
    sensors jsonb NOT NULL,
    explanation text NOT NULL,
    started_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    resolved_at timestamptz,
    acknowledged_by text,
    acknowledged_at timestamptz,
    shelved_by text,
    shelved_until timestamptz,
    -- Notes: JSON array of {"by", "at", "text"}.
    notes jsonb NOT NULL DEFAULT '[]',
    position bigint NOT NULL
);
CREATE INDEX anomalies_machine ON readmodel.anomalies (machine_id, started_at DESC);
CREATE INDEX anomalies_open ON readmodel.anomalies (started_at DESC) WHERE state <> 'resolved';
CREATE INDEX anomalies_position ON readmodel.anomalies (position);

-- Latest maintenance prediction and open work order per machine.
CREATE TABLE readmodel.maintenance (
    machine_id text PRIMARY KEY,
    predicted_days double precision,
    lower_days double precision,
    upper_days double precision,
    predicted_at timestamptz,
    model_version text,
    open_order_id text,
    open_order_kind text,
    scheduled_for timestamptz,
    last_performed_at timestamptz,
    position bigint NOT NULL
);

-- Every prediction, so clients can show how the estimate moved.
CREATE TABLE readmodel.maintenance_predictions (
    machine_id text NOT NULL,
    predicted_at timestamptz NOT NULL,
    days double precision NOT NULL,
    lower_days double precision NOT NULL,
    upper_days double precision NOT NULL,
    model_version text NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (machine_id, predicted_at)
);
CREATE INDEX maintenance_predictions_position ON readmodel.maintenance_predictions (position);

-- Work orders. kind: planned | emergency. state: scheduled | performed | cancelled.
CREATE TABLE readmodel.maintenance_log (
    order_id text PRIMARY KEY,
    machine_id text NOT NULL,
    kind text NOT NULL,
    state text NOT NULL,
    scheduled_for timestamptz,
    scheduled_by text,
    performed_at timestamptz,
    performed_by text,
    note text NOT NULL DEFAULT '',
    performed_note text NOT NULL DEFAULT '',
    position bigint NOT NULL
);
CREATE INDEX maintenance_log_machine ON readmodel.maintenance_log (machine_id);

-- Who did what, when: every domain event (not telemetry), newest first by position.
CREATE TABLE readmodel.audit (
    position bigint PRIMARY KEY,
    recorded_at timestamptz NOT NULL,
    stream text NOT NULL,
    event_type text NOT NULL,
    machine_id text,
    actor text,
    summary text NOT NULL
);
CREATE INDEX audit_machine ON readmodel.audit (machine_id, position DESC);

-- Creates the day partition of a partitioned read-model table unless it exists.
CREATE FUNCTION readmodel.ensure_day_partition(parent text, d date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    name text := format('%s_%s', parent, to_char(d, 'YYYYMMDD'));
BEGIN
    IF to_regclass(format('readmodel.%I', name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS readmodel.%I PARTITION OF readmodel.%I FOR VALUES FROM (%L) TO (%L)',
        name, parent, d::timestamptz, (d + 1)::timestamptz);
    RETURN true;
END
$$;
