-- The plant stamp: the cloud's log holds every plant's events, each with the plant it
-- came from (`origin`, the plant number; 0 for an event appended to this log itself), its
-- position in the plant's log and the time the plant recorded it. A plant's own log
-- leaves them at 0 / NULL.
ALTER TABLE eventlog.events
    ADD COLUMN origin smallint NOT NULL DEFAULT 0,
    ADD COLUMN origin_position bigint,
    ADD COLUMN origin_recorded_at timestamptz;
ALTER TABLE eventlog.telemetry
    ADD COLUMN origin smallint NOT NULL DEFAULT 0,
    ADD COLUMN origin_position bigint,
    ADD COLUMN origin_recorded_at timestamptz;

-- Every unique key holds `origin`, so the cloud's log can be distributed by plant
-- (Citus requires the distribution column in every primary key and unique index).
-- Position and (stream, version) stay unique: within one origin they were already.
ALTER TABLE eventlog.events DROP CONSTRAINT events_pkey;
ALTER TABLE eventlog.events ADD PRIMARY KEY (position, origin);
ALTER TABLE eventlog.events DROP CONSTRAINT events_stream_version_key;
ALTER TABLE eventlog.events ADD CONSTRAINT events_stream_version_key UNIQUE (stream, version, origin);
ALTER TABLE eventlog.telemetry DROP CONSTRAINT telemetry_pkey;
ALTER TABLE eventlog.telemetry ADD PRIMARY KEY (position, origin, occurred_at);

-- A plant's event is stored once: a second copy of (plant, plant position) is refused by
-- the database itself, whatever the importer does. (NULLs, the local events, never clash.)
CREATE UNIQUE INDEX events_origin_position ON eventlog.events (origin, origin_position);
CREATE UNIQUE INDEX telemetry_origin_position ON eventlog.telemetry (origin, origin_position, occurred_at);

-- How far each plant's log has been imported: the acknowledged position a forwarder
-- resumes after. Locked by an import for its transaction, so one plant's batches are
-- stored one after the other.
CREATE TABLE eventlog.origins (
    origin smallint PRIMARY KEY CHECK (origin > 0),
    position bigint NOT NULL,
    recorded_at timestamptz,
    cloud_position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE VIEW eventlog.all_events AS
    SELECT position, stream, category, version, type, schema_version,
           payload AS json, NULL::bytea AS bytes, metadata, idempotency_key, recorded_at,
           NULL::timestamptz AS occurred_at, origin, origin_position, origin_recorded_at
      FROM eventlog.events
    UNION ALL
    SELECT position, stream, category, version, type, schema_version,
           NULL::jsonb, payload, metadata, idempotency_key, recorded_at, occurred_at,
           origin, origin_position, origin_recorded_at
      FROM eventlog.telemetry;

-- How far each subscriber has read (its checkpoint may stay lower while it holds effects
-- in memory): everything it will ever write for events up to here is written.
ALTER TABLE eventlog.checkpoints ADD COLUMN read_through bigint NOT NULL DEFAULT 0;
