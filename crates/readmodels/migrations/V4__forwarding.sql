-- The plant's link to the cloud, as its forwarder last saw it: how far the plant's log has
-- been shipped and acknowledged, and how far behind that is. Written by the forwarder (not
-- a projection of the log: it is the state of the link), read like every read model;
-- `position` is the plant's newest log position when the row was written.
CREATE TABLE readmodel.forwarding (
    plant_id text PRIMARY KEY,
    -- shipping | caught_up | unreachable | refused
    state text NOT NULL,
    -- The plant log position the cloud has acknowledged storing through.
    acknowledged bigint NOT NULL,
    -- Events of the plant's log not yet acknowledged, and the age of the oldest of them.
    lag_events bigint NOT NULL,
    lag_seconds double precision NOT NULL,
    -- The cloud log's position of the newest event it stored from this plant.
    cloud_position bigint,
    last_shipped_at timestamptz,
    last_error text,
    last_error_at timestamptz,
    updated_at timestamptz NOT NULL,
    position bigint NOT NULL
);
