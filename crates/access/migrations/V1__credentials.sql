-- Credentials of people, devices and services: a bearer token each, kept only as a hash,
-- with a role and a plant scope. A token is shown once, when it is made.
CREATE SCHEMA IF NOT EXISTS access;

CREATE TABLE access.credentials (
    -- The public half of the token (`fwt_<id>_<secret>`): how a presented token is found.
    id text PRIMARY KEY,
    -- SHA-256 of the secret half, hex.
    secret_sha256 text NOT NULL,
    -- viewer | maintenance | supervisor | manager | admin | forwarder
    role text NOT NULL,
    -- The plants it may act on; NULL: every plant.
    plants smallint[],
    -- Who or what holds it (a person's name, `forwarder P3`).
    label text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
