-- The anomaly monitor's state (every sensor's detector and every machine's episode
-- tracker) as of a log position, so a restart resumes without re-raising or losing
-- episodes.
CREATE SCHEMA IF NOT EXISTS monitor;

CREATE TABLE monitor.state (
    name text PRIMARY KEY,
    position bigint NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now(),
    state bytea NOT NULL
);
