-- Predictive-maintenance models registered at this plant: every version with its metrics
-- and its model document, and which one the scorer uses (at most one is active). The
-- cloud tier, when it exists, takes training and the registry over.
CREATE SCHEMA IF NOT EXISTS maintenance;

CREATE TABLE maintenance.models (
    -- `rul-` and the first 12 hex digits of the SHA-256 of the model document.
    version text PRIMARY KEY,
    -- When the model was trained (as recorded in the model).
    created_at timestamptz NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    -- Validation metrics and the training report, as JSON.
    metrics jsonb NOT NULL,
    -- The model document (`maintenance::Model::to_json`), kept as text so it reads back
    -- exactly.
    model text NOT NULL,
    active boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX models_one_active ON maintenance.models ((true)) WHERE active;

-- The scorer's progress: the last plant-time tick it scored, written in the transaction
-- that appends that tick's predictions.
CREATE TABLE maintenance.scorer (
    name text PRIMARY KEY,
    last_tick timestamptz NOT NULL,
    model_version text NOT NULL,
    predictions integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
