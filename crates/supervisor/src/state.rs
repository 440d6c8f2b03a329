//! The plant as the app knows it: every live read-model row in memory, merged by
//! position so duplicate and out-of-order arrivals never move a row backwards.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use readmodel_contract::*;

/// Every row the floor, anomaly and maintenance screens need, keyed by id.
/// Audit entries, predictions and work orders stay in the cache and are read per machine.
#[derive(Debug, Clone, Default)]
pub struct PlantState {
    pub plant: Option<Plant>,
    pub plant_status: Option<Rollup>,
    pub lines: BTreeMap<String, Line>,
    pub line_status: BTreeMap<String, Rollup>,
    pub machines: BTreeMap<String, Machine>,
    pub machine_status: HashMap<String, MachineStatus>,
    pub sensors: HashMap<i32, Sensor>,
    pub sensor_state: HashMap<i32, SensorState>,
    pub anomalies: HashMap<String, Anomaly>,
    pub maintenance: HashMap<String, Maintenance>,
    /// The track record by (scope, id, model version): every machine's, machine type's and
    /// the plant's, for the maintenance list.
    pub track_record: BTreeMap<(String, String, String), TrackRecord>,
    /// The plant node's tasks as its supervisor last reported them.
    pub node_tasks: BTreeMap<String, NodeTask>,
}

/// Keeps the incoming row only if it is newer than the one held.
fn merge<K: std::hash::Hash + Eq + Ord + Clone, V: Clone>(
    held: &mut impl MapLike<K, V>,
    rows: Vec<V>,
    key: impl Fn(&V) -> K,
    position: impl Fn(&V) -> i64,
) -> Vec<V> {
    let mut accepted = Vec::new();
    for row in rows {
        let k = key(&row);
        match held.get_row(&k) {
            Some(old) if position(old) >= position(&row) => {}
            _ => {
                held.put_row(k, row.clone());
                accepted.push(row);
            }
        }
    }
    accepted
}

trait MapLike<K, V> {
    fn get_row(&self, k: &K) -> Option<&V>;
    fn put_row(&mut self, k: K, v: V);
}

impl<K: std::hash::Hash + Eq, V> MapLike<K, V> for HashMap<K, V> {
    fn get_row(&self, k: &K) -> Option<&V> {
        self.get(k)
    }
    fn put_row(&mut self, k: K, v: V) {
        self.insert(k, v);
    }
}

impl<K: Ord, V> MapLike<K, V> for BTreeMap<K, V> {
    fn get_row(&self, k: &K) -> Option<&V> {
        self.get(k)
    }
    fn put_row(&mut self, k: K, v: V) {
        self.insert(k, v);
    }
}

/// A single optional row treated as a one-entry map.
struct Single<'a, V>(&'a mut Option<V>);

impl<V> MapLike<(), V> for Single<'_, V> {
    fn get_row(&self, _: &()) -> Option<&V> {
        self.0.as_ref()
    }
    fn put_row(&mut self, _: (), v: V) {
        *self.0 = Some(v);
    }
}

impl PlantState {
    /// Merges fetched rows and returns only those that changed what the app shows.
    /// Rows not held in memory (predictions, work orders, audit) pass through as they are.
    pub fn apply(&mut self, changes: Changes) -> Changes {
        let newest = |rows: Vec<Plant>| {
            // The plant table has one row; if a batch carries several versions, the newest wins.
            rows.into_iter().max_by_key(|p| p.position).into_iter().collect::<Vec<_>>()
        };
        let newest_rollup = |rows: Vec<Rollup>| rows.into_iter().max_by_key(|p| p.position).into_iter().collect();
        Changes {
            plant: merge(&mut Single(&mut self.plant), newest(changes.plant), |_| (), |r| r.position),
            plant_status: merge(
                &mut Single(&mut self.plant_status),
                newest_rollup(changes.plant_status),
                |_| (),
                |r| r.position,
            ),
            lines: merge(&mut self.lines, changes.lines, |r| r.line_id.clone(), |r| r.position),
            line_status: merge(&mut self.line_status, changes.line_status, |r| r.id.clone(), |r| r.position),
            machines: merge(&mut self.machines, changes.machines, |r| r.machine_id.clone(), |r| r.position),
            machine_status: merge(
                &mut self.machine_status,
                changes.machine_status,
                |r| r.machine_id.clone(),
                |r| r.position,
            ),
            sensors: merge(&mut self.sensors, changes.sensors, |r| r.sensor_id, |r| r.position),
            sensor_state: merge(&mut self.sensor_state, changes.sensor_state, |r| r.sensor_id, |r| r.position),
            anomalies: merge(&mut self.anomalies, changes.anomalies, |r| r.anomaly_id.clone(), |r| r.position),
            maintenance: merge(&mut self.maintenance, changes.maintenance, |r| r.machine_id.clone(), |r| r.position),
            predictions: changes.predictions,
            work_orders: changes.work_orders,
            audit: changes.audit,
            track_record: merge(
                &mut self.track_record,
                changes.track_record,
                |r| (r.scope.clone(), r.id.clone(), r.model_version.clone()),
                |r| r.position,
            ),
            track_failures: changes.track_failures,
            node_tasks: merge(&mut self.node_tasks, changes.node_tasks, |r| r.task.clone(), |r| r.position),
        }
    }

    /// Forgets resolved anomalies beyond the `keep` most recently resolved (open ones are
    /// always kept), so an app left running for months holds a bounded picture; returns
    /// the ids forgotten, for the cache to forget them too. Does nothing until there are
    /// a tenth more than `keep`, so it runs once in a while rather than on every update.
    pub fn forget_resolved(&mut self, keep: usize) -> Vec<String> {
        let resolved = self.anomalies.values().filter(|a| a.is_resolved()).count();
        if resolved <= keep + keep / 10 {
            return Vec::new();
        }
        let mut by_end: Vec<(i64, &String)> = self
            .anomalies
            .values()
            .filter(|a| a.is_resolved())
            .map(|a| (a.resolved_at_ms.unwrap_or(a.updated_at_ms), &a.anomaly_id))
            .collect();
        by_end.sort_unstable_by(|a, b| b.cmp(a));
        let gone: Vec<String> = by_end.into_iter().skip(keep).map(|(_, id)| id.clone()).collect();
        for id in &gone {
            self.anomalies.remove(id);
        }
        gone
    }

    /// The newest position of any row held: how far the app's picture goes.
    pub fn newest_position(&self) -> i64 {
        let opt = [self.plant.as_ref().map(|p| p.position), self.plant_status.as_ref().map(|p| p.position)];
        opt.into_iter()
            .flatten()
            .chain(self.lines.values().map(|r| r.position))
            .chain(self.line_status.values().map(|r| r.position))
            .chain(self.machines.values().map(|r| r.position))
            .chain(self.machine_status.values().map(|r| r.position))
            .chain(self.sensors.values().map(|r| r.position))
            .chain(self.sensor_state.values().map(|r| r.position))
            .chain(self.anomalies.values().map(|r| r.position))
            .chain(self.maintenance.values().map(|r| r.position))
            .chain(self.track_record.values().map(|r| r.position))
            .max()
            .unwrap_or(0)
    }

    /// Everything the floor, anomaly and maintenance screens draw from.
    pub fn floor(&self, recent_resolved: usize) -> Floor {
        let mut anomalies: Vec<Anomaly> = self.anomalies.values().filter(|a| !a.is_resolved()).cloned().collect();
        let mut resolved: Vec<&Anomaly> = self.anomalies.values().filter(|a| a.is_resolved()).collect();
        resolved.sort_by_key(|a| std::cmp::Reverse(a.resolved_at_ms.unwrap_or(a.updated_at_ms)));
        anomalies.extend(resolved.into_iter().take(recent_resolved).cloned());
        anomalies.sort_by_key(|a| std::cmp::Reverse(a.started_at_ms));
        Floor {
            plant: self.plant.clone(),
            plant_status: self.plant_status.clone(),
            lines: self.lines.values().cloned().collect(),
            line_status: self.line_status.values().cloned().collect(),
            machines: self.machines.values().cloned().collect(),
            machine_status: self.machine_status.values().cloned().collect(),
            anomalies,
            maintenance: self.maintenance.values().cloned().collect(),
            track_record: self.track_record.values().cloned().collect(),
            node_tasks: self.node_tasks.values().cloned().collect(),
        }
    }

    /// The track record of one scope and id (`machine`, `machine_type`), every model version.
    pub fn track_of(&self, scope: &str, id: &str) -> Vec<TrackRecord> {
        self.track_record.values().filter(|r| r.scope == scope && r.id == id).cloned().collect()
    }

    /// A machine's sensors (by name) and their last values.
    pub fn machine_sensors(&self, machine_id: &str) -> (Vec<Sensor>, Vec<SensorState>) {
        let mut sensors: Vec<Sensor> = self.sensors.values().filter(|s| s.machine_id == machine_id).cloned().collect();
        sensors.sort_by(|a, b| a.name.cmp(&b.name));
        let states = sensors.iter().filter_map(|s| self.sensor_state.get(&s.sensor_id).cloned()).collect();
        (sensors, states)
    }
}

/// The whole picture for the screens, sent once; deltas follow.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Floor {
    pub plant: Option<Plant>,
    pub plant_status: Option<Rollup>,
    pub lines: Vec<Line>,
    pub line_status: Vec<Rollup>,
    pub machines: Vec<Machine>,
    pub machine_status: Vec<MachineStatus>,
    pub anomalies: Vec<Anomaly>,
    pub maintenance: Vec<Maintenance>,
    pub track_record: Vec<TrackRecord>,
    /// The plant node's tasks: a screen says when one is down ("anomaly detection stopped
    /// since …").
    pub node_tasks: Vec<NodeTask>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(sensor_id: i32, value: f64, position: i64) -> SensorState {
        SensorState {
            sensor_id,
            machine_id: "P1-L01-M001".into(),
            value,
            ts_ms: position * 1000,
            status: "ok".into(),
            position,
        }
    }

    fn changes(rows: Vec<SensorState>) -> Changes {
        Changes { sensor_state: rows, ..Changes::default() }
    }

    #[test]
    fn a_newer_row_replaces_an_older_one() {
        let mut s = PlantState::default();
        let d = s.apply(changes(vec![state(1, 1.0, 10)]));
        assert_eq!(d.sensor_state.len(), 1);
        let d = s.apply(changes(vec![state(1, 2.0, 11)]));
        assert_eq!(d.sensor_state, vec![state(1, 2.0, 11)]);
        assert_eq!(s.sensor_state[&1].value, 2.0);
        assert_eq!(s.newest_position(), 11);
    }

    #[test]
    fn duplicates_and_out_of_order_arrivals_never_move_a_row_backwards() {
        let mut s = PlantState::default();
        s.apply(changes(vec![state(1, 5.0, 20), state(2, 1.0, 15)]));
        let d = s.apply(changes(vec![state(1, 4.0, 19), state(1, 5.0, 20), state(2, 1.5, 16)]));
        assert_eq!(d.sensor_state, vec![state(2, 1.5, 16)], "only the newer row is a change");
        assert_eq!(s.sensor_state[&1].value, 5.0);
        let again = s.apply(changes(vec![state(2, 1.5, 16)]));
        assert!(again.is_empty(), "a duplicate delivery changes nothing");
    }

    #[test]
    fn within_one_batch_the_newest_version_of_a_row_wins_whatever_the_order() {
        let mut s = PlantState::default();
        s.apply(changes(vec![state(1, 3.0, 30), state(1, 1.0, 10)]));
        assert_eq!(s.sensor_state[&1].value, 3.0);
    }

    fn anomaly(id: &str, state: &str, started: i64) -> Anomaly {
        Anomaly {
            anomaly_id: id.into(),
            machine_id: "M".into(),
            line_id: "L".into(),
            severity: "major".into(),
            state: state.into(),
            score: 0.9,
            sensors: vec![],
            explanation: String::new(),
            started_at_ms: started,
            updated_at_ms: started,
            resolved_at_ms: (state == "resolved").then_some(started + 1),
            acknowledged_by: None,
            acknowledged_at_ms: None,
            shelved_by: None,
            shelved_until_ms: None,
            notes: vec![],
            position: started,
        }
    }

    #[test]
    fn only_the_most_recently_resolved_anomalies_are_kept_and_open_ones_always() {
        let mut s = PlantState::default();
        let mut rows: Vec<Anomaly> = (0..30).map(|i| anomaly(&format!("r{i:02}"), "resolved", i)).collect();
        rows.extend((0..5).map(|i| anomaly(&format!("o{i}"), "acknowledged", i)));
        s.apply(Changes { anomalies: rows, ..Changes::default() });
        // 30 resolved is within a tenth of 28: nothing is forgotten yet.
        assert!(s.forget_resolved(28).is_empty());
        let mut gone = s.forget_resolved(20);
        gone.sort();
        assert_eq!(gone, (0..10).map(|i| format!("r{i:02}")).collect::<Vec<_>>(), "the oldest resolved go");
        assert_eq!(s.anomalies.len(), 25);
        assert!((0..5).all(|i| s.anomalies.contains_key(&format!("o{i}"))), "open anomalies stay");
        assert!(s.forget_resolved(20).is_empty());
    }

    #[test]
    fn the_floor_lists_open_anomalies_and_only_the_most_recent_resolved_ones() {
        let mut s = PlantState::default();
        s.apply(Changes {
            anomalies: vec![
                anomaly("a", "new", 1),
                anomaly("b", "resolved", 2),
                anomaly("c", "resolved", 3),
                anomaly("d", "acknowledged", 4),
            ],
            ..Changes::default()
        });
        let ids: Vec<String> = s.floor(1).anomalies.into_iter().map(|a| a.anomaly_id).collect();
        assert_eq!(ids, vec!["d", "c", "a"]);
    }
}
