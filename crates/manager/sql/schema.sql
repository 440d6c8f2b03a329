-- The managers' view cache (and, with kind = 'snapshot' in meta, a snapshot file): every
-- answer of the cloud the view has shown, as the cloud sent it.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plants (plant INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lines (plant INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS machines (plant INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kpi (
    bucket TEXT NOT NULL,
    grouping TEXT NOT NULL,
    plant INTEGER NOT NULL,
    grp TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (bucket, grouping, plant, grp, start_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trend (
    machine_id TEXT NOT NULL,
    plant INTEGER NOT NULL,
    from_ms INTEGER NOT NULL,
    to_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (machine_id, from_ms, to_ms)
) WITHOUT ROWID;
