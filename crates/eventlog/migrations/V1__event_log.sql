-- The event log: one global order of every fact, append-only.
CREATE SCHEMA IF NOT EXISTS eventlog;

-- The newest position handed out. Appenders lock this row for the rest of their
-- transaction, so transactions that append commit in position order and a reader
-- that has seen position N has seen every committed position below N. Rolled-back
-- appends roll the counter back too, so positions have no gaps.
CREATE TABLE eventlog.head (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    position bigint NOT NULL
);
INSERT INTO eventlog.head (position) VALUES (0);

-- Current version of every stream (expected-version checks read this, not the events).
CREATE TABLE eventlog.streams (
    stream text PRIMARY KEY,
    version bigint NOT NULL,
    last_position bigint NOT NULL
) WITH (fillfactor = 80);

-- Domain events: kept forever.
CREATE TABLE eventlog.events (
    position bigint PRIMARY KEY,
    stream text NOT NULL,
    category text GENERATED ALWAYS AS (split_part(stream, '-', 1)) STORED,
    version bigint NOT NULL,
    type text NOT NULL,
    schema_version smallint NOT NULL,
    payload jsonb NOT NULL,
    metadata jsonb NOT NULL,
    idempotency_key text,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream, version)
);
CREATE INDEX events_category_position ON eventlog.events (category, position);

-- Telemetry batches (compact binary payloads): kept for the retention window, in one
-- partition per day of the readings' time, so expiry drops whole partitions.
CREATE TABLE eventlog.telemetry (
    position bigint NOT NULL,
    stream text NOT NULL,
    category text GENERATED ALWAYS AS (split_part(stream, '-', 1)) STORED,
    version bigint NOT NULL,
    type text NOT NULL,
    schema_version smallint NOT NULL,
    payload bytea COMPRESSION lz4 NOT NULL,
    metadata jsonb NOT NULL,
    idempotency_key text,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (position, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX telemetry_stream_version ON eventlog.telemetry (stream, version);
CREATE INDEX telemetry_category_position ON eventlog.telemetry (category, position);

-- The whole log in one relation, for readers.
CREATE VIEW eventlog.all_events AS
    SELECT position, stream, category, version, type, schema_version,
           payload AS json, NULL::bytea AS bytes, metadata, idempotency_key, recorded_at,
           NULL::timestamptz AS occurred_at
      FROM eventlog.events
    UNION ALL
    SELECT position, stream, category, version, type, schema_version,
           NULL::jsonb, payload, metadata, idempotency_key, recorded_at, occurred_at
      FROM eventlog.telemetry;

-- What an append with an idempotency key stored, so a retry returns the same answer.
CREATE TABLE eventlog.idempotency_keys (
    key text PRIMARY KEY,
    stream text NOT NULL,
    first_position bigint NOT NULL,
    last_position bigint NOT NULL,
    first_version bigint NOT NULL,
    last_version bigint NOT NULL,
    -- Keys of telemetry batches go with their partition; domain keys are kept forever.
    expires_at timestamptz
);
CREATE INDEX idempotency_keys_expires_at ON eventlog.idempotency_keys (expires_at) WHERE expires_at IS NOT NULL;

-- Where each subscriber has got to; written in the same transaction as its effects.
CREATE TABLE eventlog.checkpoints (
    subscriber text PRIMARY KEY,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Aggregate snapshots at a stream version.
CREATE TABLE eventlog.snapshots (
    stream text NOT NULL,
    version bigint NOT NULL,
    schema_version smallint NOT NULL,
    state jsonb NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, version)
);

-- Creates the telemetry partition holding day `d` unless it exists.
CREATE FUNCTION eventlog.ensure_telemetry_partition(d date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    name text := format('telemetry_%s', to_char(d, 'YYYYMMDD'));
BEGIN
    IF to_regclass(format('eventlog.%I', name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS eventlog.%I PARTITION OF eventlog.telemetry FOR VALUES FROM (%L) TO (%L)',
        name, d::timestamptz, (d + 1)::timestamptz);
    RETURN true;
END
$$;
