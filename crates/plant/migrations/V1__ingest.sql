-- What the ingest API refused, with why: nothing a gateway sends is dropped silently.
CREATE SCHEMA IF NOT EXISTS ingest;

CREATE TABLE ingest.dead_letters (
    id bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    gateway text NOT NULL,
    -- The upload's idempotency key (gateway and sequence, or the machine message's key).
    upload text NOT NULL,
    -- Index of the reading within the upload; -1 when the whole body was refused.
    item integer NOT NULL,
    sensor text,
    ts_ms bigint,
    value double precision,
    reason text NOT NULL,
    -- The body as received, when it could not be read at all (at most 64 KiB).
    raw bytea,
    UNIQUE (upload, item)
);
CREATE INDEX dead_letters_received_at ON ingest.dead_letters (received_at);
