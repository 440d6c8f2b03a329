-- The monitor keeps its newest few snapshots, not only the last one: when the newest
-- cannot be loaded (damaged, or written by a version that cannot be resumed) it falls
-- back to an older one instead of stopping.
ALTER TABLE monitor.state DROP CONSTRAINT state_pkey;
ALTER TABLE monitor.state ADD PRIMARY KEY (name, position);
