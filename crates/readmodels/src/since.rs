//! "What changed since position N", one query per read model. Every row carries the
//! position of the event that last changed it, so the same query serves live updates
//! (after a NOTIFY) and catching up after being offline. `$1` is N.

/// `(table, query)` for every read model a client follows.
pub const QUERIES: &[(&str, &str)] = &[
    ("layout", include_str!("../sql/since/layout.sql")),
    ("sensor_state", include_str!("../sql/since/sensor_state.sql")),
    ("machine_status", include_str!("../sql/since/machine_status.sql")),
    ("line_status", include_str!("../sql/since/line_status.sql")),
    ("plant_status", include_str!("../sql/since/plant_status.sql")),
    ("anomalies", include_str!("../sql/since/anomalies.sql")),
    ("maintenance", include_str!("../sql/since/maintenance.sql")),
    ("maintenance_predictions", include_str!("../sql/since/maintenance_predictions.sql")),
    ("maintenance_log", include_str!("../sql/since/maintenance_log.sql")),
    ("audit", include_str!("../sql/since/audit.sql")),
    ("sensor_history", include_str!("../sql/since/sensor_history.sql")),
    ("sensor_minute", include_str!("../sql/since/sensor_minute.sql")),
    ("sensor_hour", include_str!("../sql/since/sensor_hour.sql")),
];

/// The query for `table`.
pub fn query(table: &str) -> Option<&'static str> {
    QUERIES.iter().find(|(t, _)| *t == table).map(|(_, q)| *q)
}
