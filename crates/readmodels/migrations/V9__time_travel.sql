-- Time travel: the plant as it was at an instant is a fold of the log up to a point.
-- So that a fold never starts from the beginning, the live projection keeps a copy of its
-- whole state every so many events (`state`: the live model, frozen), with how far each
-- clock had got by then: the newest `recorded_at` at or before `position`, the newest
-- time a reading or an event states, and the newest earliest-reading time (what decides
-- whether an event arrived late). Times are ms since the epoch; a log with no such time
-- yet holds the smallest bigint.
CREATE TABLE readmodel.timetravel_checkpoints (
    position            bigint PRIMARY KEY,
    recorded_through_ms bigint NOT NULL,
    happened_through_ms bigint NOT NULL,
    started_through_ms  bigint NOT NULL,
    state               bytea NOT NULL
);
CREATE INDEX timetravel_checkpoints_recorded ON readmodel.timetravel_checkpoints (recorded_through_ms, position);
CREATE INDEX timetravel_checkpoints_happened ON readmodel.timetravel_checkpoints (happened_through_ms, position);

-- Events that arrived late (a gateway's upload after an outage, an anomaly found in it):
-- what happened before the plant's clock had passed it by more than the grace. "As it
-- happened" replays the log from a checkpoint until the clock is past the instant, and
-- then only these.
CREATE TABLE readmodel.timetravel_late (
    position    bigint PRIMARY KEY,
    occurred_ms bigint NOT NULL
);
CREATE INDEX timetravel_late_occurred ON readmodel.timetravel_late (occurred_ms, position);
