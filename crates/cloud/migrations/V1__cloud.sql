-- The cloud's read models: every plant's layout, per-group KPIs per hour and per day,
-- sensor aggregates, anomalies, maintenance, and the model registry. Every table is built
-- by a projection of the cloud's log (except the registry, written by training) and can
-- be dropped and rebuilt from it.
--
-- Written to be distributed with Citus by plant (see `citus.rs`): every table that grows
-- with the plants' history has `plant` in its primary key and every unique index, no
-- foreign key joins two of them, and the small layout tables become reference tables.
-- `position` is the cloud log position of the event that last changed a row, so
-- `WHERE position > N` is "what changed since N".
CREATE SCHEMA IF NOT EXISTS cloud;

-- How far each projection has got, and what it keeps in memory between batches.
CREATE TABLE cloud.projections (
    name text PRIMARY KEY,
    position bigint NOT NULL,
    memory jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Layout, from each plant's `LayoutConfigured` (reference tables).
CREATE TABLE cloud.plants (
    plant smallint PRIMARY KEY,
    plant_id text NOT NULL,
    name text NOT NULL,
    lines integer NOT NULL,
    machines integer NOT NULL,
    sensors integer NOT NULL,
    position bigint NOT NULL
);

CREATE TABLE cloud.lines (
    plant smallint NOT NULL,
    line_id text NOT NULL,
    number integer NOT NULL,
    machines integer NOT NULL,
    sensors integer NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (plant, line_id)
);

CREATE TABLE cloud.machines (
    plant smallint NOT NULL,
    machine_id text NOT NULL,
    line_id text NOT NULL,
    number integer NOT NULL,
    machine_type text NOT NULL,
    description text NOT NULL,
    sensors integer NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (plant, machine_id)
);

CREATE TABLE cloud.sensors (
    plant smallint NOT NULL,
    sensor_id integer NOT NULL,
    name text NOT NULL,
    machine_id text NOT NULL,
    kind text NOT NULL,
    unit text NOT NULL,
    normal_min double precision NOT NULL,
    normal_max double precision NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (plant, sensor_id)
);
CREATE INDEX sensors_machine ON cloud.sensors (plant, machine_id);

-- What KPIs are grouped by: a plant's machines of one type on one line.
CREATE TABLE cloud.groups (
    plant smallint NOT NULL,
    line_id text NOT NULL,
    machine_type text NOT NULL,
    machines integer NOT NULL,
    sensors integer NOT NULL,
    PRIMARY KEY (plant, line_id, machine_type)
);

-- KPIs per group per hour and per (UTC) day. Every column is a whole-number sum, so rows
-- add up exactly to any coarser group or bucket, in any order (a rebuild gives the same
-- rows as the live run); ratios are computed when read:
--   sensor availability = sensor_hours / (group sensors × hours),
--   mean time to acknowledge = ack_ms / acknowledged,
--   mean predicted days to service = predicted_millidays / 1000 / predictions,
--   OEE factors from planned_ms, running_ms, parts, good_parts, ideal_ms
--   (ideal_ms = Σ parts × ideal cycle time).
-- Anomalies count in the hour they started, with the severity they started with; an
-- acknowledgement counts in the hour its anomaly started; production in the hour its
-- report period lies in.
CREATE TABLE cloud.kpi_hour (
    plant smallint NOT NULL,
    line_id text NOT NULL,
    machine_type text NOT NULL,
    hour timestamptz NOT NULL,
    readings bigint NOT NULL DEFAULT 0,
    sensor_hours bigint NOT NULL DEFAULT 0,
    anomalies_minor bigint NOT NULL DEFAULT 0,
    anomalies_major bigint NOT NULL DEFAULT 0,
    anomalies_critical bigint NOT NULL DEFAULT 0,
    acknowledged bigint NOT NULL DEFAULT 0,
    ack_ms bigint NOT NULL DEFAULT 0,
    maintenance_performed bigint NOT NULL DEFAULT 0,
    failures bigint NOT NULL DEFAULT 0,
    predictions bigint NOT NULL DEFAULT 0,
    predicted_millidays bigint NOT NULL DEFAULT 0,
    planned_ms bigint NOT NULL DEFAULT 0,
    running_ms bigint NOT NULL DEFAULT 0,
    parts bigint NOT NULL DEFAULT 0,
    good_parts bigint NOT NULL DEFAULT 0,
    ideal_ms bigint NOT NULL DEFAULT 0,
    position bigint NOT NULL,
    PRIMARY KEY (plant, hour, line_id, machine_type)
) WITH (fillfactor = 80);
CREATE INDEX kpi_hour_position ON cloud.kpi_hour (position);

CREATE TABLE cloud.kpi_day (LIKE cloud.kpi_hour INCLUDING DEFAULTS);
ALTER TABLE cloud.kpi_day RENAME COLUMN hour TO day;
ALTER TABLE cloud.kpi_day ADD PRIMARY KEY (plant, day, line_id, machine_type);
CREATE INDEX kpi_day_position ON cloud.kpi_day (position);

-- Per plant: its newest reading and how many readings the cloud holds.
CREATE TABLE cloud.plant_status (
    plant smallint PRIMARY KEY,
    readings bigint NOT NULL,
    newest_reading timestamptz,
    position bigint NOT NULL
);
CREATE INDEX plant_status_position ON cloud.plant_status (position);

-- Per sensor: hour and day aggregates for the whole history, minute aggregates for a
-- recent window (day partitions, expired whole).
CREATE TABLE cloud.sensor_hour (
    plant smallint NOT NULL,
    sensor_id integer NOT NULL,
    hour timestamptz NOT NULL,
    count integer NOT NULL,
    min double precision NOT NULL,
    max double precision NOT NULL,
    mean double precision NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (plant, sensor_id, hour)
);

CREATE TABLE cloud.sensor_day (LIKE cloud.sensor_hour);
ALTER TABLE cloud.sensor_day RENAME COLUMN hour TO day;
ALTER TABLE cloud.sensor_day ADD PRIMARY KEY (plant, sensor_id, day);

CREATE TABLE cloud.sensor_minute (
    plant smallint NOT NULL,
    sensor_id integer NOT NULL,
    minute timestamptz NOT NULL,
    count integer NOT NULL,
    min double precision NOT NULL,
    max double precision NOT NULL,
    mean double precision NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (plant, sensor_id, minute)
) PARTITION BY RANGE (minute);
CREATE INDEX sensor_minute_position ON cloud.sensor_minute (position);

-- Anomaly episodes of every plant, with the explanation the plant's monitor gave.
CREATE TABLE cloud.anomalies (
    plant smallint NOT NULL,
    anomaly_id text NOT NULL,
    machine_id text NOT NULL,
    line_id text NOT NULL,
    machine_type text NOT NULL,
    severity text NOT NULL,
    state text NOT NULL,
    score double precision NOT NULL,
    sensors jsonb NOT NULL,
    explanation text NOT NULL,
    detector_version text NOT NULL,
    started_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    resolved_at timestamptz,
    acknowledged_by text,
    acknowledged_at timestamptz,
    shelved_by text,
    shelved_until timestamptz,
    notes jsonb NOT NULL DEFAULT '[]',
    position bigint NOT NULL,
    PRIMARY KEY (plant, anomaly_id)
);
CREATE INDEX anomalies_started ON cloud.anomalies (started_at, plant, anomaly_id);
CREATE INDEX anomalies_machine ON cloud.anomalies (plant, machine_id, started_at);
CREATE INDEX anomalies_position ON cloud.anomalies (position);

-- Latest prediction, open work order and last service per machine.
CREATE TABLE cloud.maintenance (
    plant smallint NOT NULL,
    machine_id text NOT NULL,
    line_id text NOT NULL,
    machine_type text NOT NULL,
    predicted_days double precision,
    lower_days double precision,
    upper_days double precision,
    predicted_at timestamptz,
    model_version text,
    open_order_id text,
    open_order_kind text,
    scheduled_for timestamptz,
    last_performed_at timestamptz,
    last_failure_at timestamptz,
    position bigint NOT NULL,
    PRIMARY KEY (plant, machine_id)
);
CREATE INDEX maintenance_due ON cloud.maintenance (lower_days, plant, machine_id);
CREATE INDEX maintenance_position ON cloud.maintenance (position);

-- Every prediction, so the app shows how an estimate moved.
CREATE TABLE cloud.predictions (
    plant smallint NOT NULL,
    machine_id text NOT NULL,
    predicted_at timestamptz NOT NULL,
    days double precision NOT NULL,
    lower_days double precision NOT NULL,
    upper_days double precision NOT NULL,
    model_version text NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (plant, machine_id, predicted_at)
);

-- The maintenance history: work orders (planned | emergency; scheduled | performed) and
-- failures (kind `failure`, state `failed`), newest first by `at`.
CREATE TABLE cloud.maintenance_log (
    plant smallint NOT NULL,
    entry_id text NOT NULL,
    machine_id text NOT NULL,
    kind text NOT NULL,
    state text NOT NULL,
    at timestamptz NOT NULL,
    scheduled_for timestamptz,
    scheduled_by text,
    performed_at timestamptz,
    performed_by text,
    note text NOT NULL DEFAULT '',
    performed_note text NOT NULL DEFAULT '',
    position bigint NOT NULL,
    PRIMARY KEY (plant, entry_id)
);
CREATE INDEX maintenance_log_at ON cloud.maintenance_log (at, plant, entry_id);
CREATE INDEX maintenance_log_machine ON cloud.maintenance_log (plant, machine_id, at);
CREATE INDEX maintenance_log_position ON cloud.maintenance_log (position);

-- The cloud's model registry: every maintenance model trained on all plants' history,
-- with its evaluation metrics; the active one is published to every plant.
CREATE TABLE cloud.models (
    version text PRIMARY KEY,
    created_at timestamptz NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    metrics jsonb NOT NULL,
    model text NOT NULL,
    active boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX models_one_active ON cloud.models ((true)) WHERE active;

-- Creates the day partition of cloud.sensor_minute unless it exists.
CREATE FUNCTION cloud.ensure_minute_partition(d date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    name text := format('sensor_minute_%s', to_char(d, 'YYYYMMDD'));
BEGIN
    IF to_regclass(format('cloud.%I', name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS cloud.%I PARTITION OF cloud.sensor_minute FOR VALUES FROM (%L) TO (%L)',
        name, d::timestamptz, (d + 1)::timestamptz);
    RETURN true;
END
$$;
