-- The app's local cache: every read-model row it has seen, how far it has got per read
-- model, the raw and aggregated history it has drawn, and the commands not yet applied.
-- Rows are stored as JSON bodies keyed by read model and key: the cache never needs to
-- query inside a row except by machine.
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;

CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS cursors (
    model TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS rows (
    model TEXT NOT NULL,
    key TEXT NOT NULL,
    machine_id TEXT,
    position INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (model, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rows_machine ON rows (model, machine_id, position);

CREATE TABLE IF NOT EXISTS history_raw (
    sensor_id INTEGER NOT NULL,
    minute_ms INTEGER NOT NULL,
    readings BLOB NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (sensor_id, minute_ms)
) WITHOUT ROWID;

-- resolution: 'minute' | 'hour'
CREATE TABLE IF NOT EXISTS history_buckets (
    resolution TEXT NOT NULL,
    sensor_id INTEGER NOT NULL,
    bucket_ms INTEGER NOT NULL,
    count INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    mean REAL NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (resolution, sensor_id, bucket_ms)
) WITHOUT ROWID;

-- state: 'pending' (to send) | 'sent' (accepted, not yet seen in the read models) | 'failed' (rejected)
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    command_id TEXT NOT NULL UNIQUE,
    by TEXT NOT NULL,
    command TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    error_code TEXT,
    error_message TEXT,
    position INTEGER
);

-- Time travel without the plant: the floor's rows (plant, line, machine and sensor state,
-- anomalies, maintenance) as this workstation received them. `floor_journal` holds each
-- catch-up's floor rows with when they arrived, `floor_base` the floor as it stood before
-- the oldest entry (older entries are folded into it), `floor_spans` the stretches of time
-- the app was following the plant: an instant outside every span was not seen here. Kept
-- for a day at most and within a size bound (`cache::JOURNAL_*`).
CREATE TABLE IF NOT EXISTS floor_base (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS floor_journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS floor_spans (
    from_ms INTEGER PRIMARY KEY,
    to_ms INTEGER NOT NULL
);
-- The plant's own answers to "the floor at an instant" that the app fetched, newest kept
-- (`cache::ANSWERS_KEPT`), so an instant already seen is shown again without the plant.
CREATE TABLE IF NOT EXISTS travel_answers (
    clock TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    fetched_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (clock, at_ms)
);
