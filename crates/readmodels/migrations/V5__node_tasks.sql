-- The plant node's tasks as its supervisor reports them (writer, projections, anomaly
-- monitor, scorer, retention, …), so every screen can say when one is down. Not derived
-- from the log (a task that cannot write the log must still be seen to be down): the
-- node upserts a row when a task's state changes and every few seconds. `position` comes
-- from its own sequence and orders these rows among themselves, for the since-query.
CREATE SEQUENCE readmodel.node_task_position;
CREATE TABLE readmodel.node_tasks (
    task        text PRIMARY KEY,
    state       text NOT NULL,
    since       timestamptz NOT NULL,
    restarts    integer NOT NULL,
    last_error  text,
    lag_events  bigint,
    updated_at  timestamptz NOT NULL,
    position    bigint NOT NULL
);
CREATE INDEX node_tasks_position ON readmodel.node_tasks (position, task);
-- Default privileges cover the table; the reader never needs the sequence.
GRANT SELECT ON readmodel.node_tasks TO floorwatch_reader;
