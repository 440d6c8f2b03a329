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
