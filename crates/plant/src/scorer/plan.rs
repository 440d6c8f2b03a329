//! The scorer's pure part: which machines get a prediction at a tick, which hours of
//! history their features need, the feature table from the hours read, and the
//! `MaintenancePredicted` events from the model's predictions — with the model's alert
//! rule deciding "due". No IO and no clock: `store.rs` reads, `mod.rs` runs the loop.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use domain::events::MaintenancePredicted;
use maintenance::{
    AlertRule, DAY_MS, FactoryColumns, FeatureConfig, HOUR_MS, HistoryTable, MachineSchema, Model, Prediction,
    SensorHour,
};
use readmodels::live::model::DUE_WITHIN_DAYS;

/// Machines left without a prediction at a tick, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    pub in_maintenance: usize,
    pub unknown_to_model: usize,
    pub without_readings: usize,
}

/// A machine as the scorer reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineRow {
    pub id: String,
    pub machine_type: String,
    /// Its last completed service: the origin of its current run.
    pub last_performed_at: Option<DateTime<Utc>>,
    /// A work order is open, for this time (none: at once).
    pub open_order: bool,
    pub scheduled_for: Option<DateTime<Utc>>,
}

impl MachineRow {
    /// Under maintenance at `tick`: an open work order that is due.
    fn in_maintenance(&self, tick: DateTime<Utc>) -> bool {
        self.open_order && self.scheduled_for.is_none_or(|d| d <= tick)
    }
}

/// The rule that says "due" for a model: its own, or — for a model file from before models
/// carried one — the interval's lower bound within the read models' due horizon.
pub fn alert_rule(model: &Model) -> AlertRule {
    model.alert().copied().unwrap_or(AlertRule::lower_bound(DUE_WITHIN_DAYS))
}

/// The machines to score at `tick`, each with its sensors grouped for the model's columns,
/// and those left out: under maintenance, or of a type (or sensor set) the model does not
/// know.
pub fn eligible<'a>(
    machines: &'a [MachineRow],
    sensors: &HashMap<String, Vec<(u32, String)>>,
    columns: &FactoryColumns,
    tick: DateTime<Utc>,
) -> (Vec<(&'a MachineRow, MachineSchema)>, Skipped) {
    let mut skipped = Skipped::default();
    let mut out = Vec::new();
    for m in machines {
        if m.in_maintenance(tick) {
            skipped.in_maintenance += 1;
            continue;
        }
        let list = sensors.get(&m.id).map(Vec::as_slice).unwrap_or_default();
        match MachineSchema::new(&m.machine_type, list.iter().map(|(id, kind)| (*id, kind.as_str()))) {
            Ok(schema) if columns.covers(&schema) => out.push((m, schema)),
            _ => skipped.unknown_to_model += 1,
        }
    }
    (out, skipped)
}

/// Which hours a prediction at a tick reads: complete clock hours before `until`, from the
/// run's first hour through its baseline, and the recent ones — the longest feature window
/// before every row the alert rule looks back on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub until: DateTime<Utc>,
    pub recent_start: DateTime<Utc>,
    baseline_ms: i64,
}

impl Window {
    /// For a model with feature windows `config` and an alert rule, at `tick_ms`.
    pub fn new(config: &FeatureConfig, rule: &AlertRule, tick_ms: i64) -> Result<Window> {
        let until_ms = maintenance::hour_of_ms(tick_ms);
        let days = |d: f64| (d * DAY_MS as f64).ceil() as i64;
        let recent_ms = until_ms - days(config.longest_window()) - days(rule.persist) - HOUR_MS;
        Ok(Window {
            until: DateTime::from_timestamp_millis(until_ms).context("tick out of range")?,
            recent_start: DateTime::from_timestamp_millis(recent_ms).context("window out of range")?,
            baseline_ms: days(config.baseline_window),
        })
    }

    /// The hours one machine reads, given its first hour with readings since its origin.
    pub fn range<'a>(&self, machine: &'a str, first: DateTime<Utc>) -> Result<HourRange<'a>> {
        let baseline_end = DateTime::from_timestamp_millis(first.timestamp_millis().saturating_add(self.baseline_ms))
            .context("baseline out of range")?;
        Ok(HourRange { machine, first, baseline_end, recent_start: self.recent_start, until: self.until })
    }
}

/// The hours of one machine to read: `[first, baseline_end)` and `[recent_start, until)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HourRange<'a> {
    pub machine: &'a str,
    pub first: DateTime<Utc>,
    pub baseline_end: DateTime<Utc>,
    pub recent_start: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// The feature table of `machines` from their hours (machines without hours are left out),
/// each unit starting at its last service when one is recorded.
pub fn table(
    columns: &FactoryColumns,
    machines: &[(&MachineRow, MachineSchema)],
    hours: &BTreeMap<String, Vec<SensorHour>>,
) -> Result<HistoryTable> {
    let mut table = HistoryTable::new(columns.names().to_vec())?;
    for (m, schema) in machines {
        let Some(hs) = hours.get(&m.id) else { continue };
        let origin = m.last_performed_at.map(|t| maintenance::days_of_ms(t.timestamp_millis()));
        table.start_unit_with(&m.id, origin)?;
        for (time, row) in columns.rows(schema, hs) {
            table.push_row(&m.id, time, &row)?;
        }
    }
    Ok(table)
}

/// One `MaintenancePredicted` per machine of `table` as of `tick_ms`: the prediction at its
/// last complete hour, moved to the tick, and "due" by `rule` over the hours it looks back
/// on (the model predicts each of them).
pub fn predictions(
    model: &Model,
    rule: &AlertRule,
    table: &HistoryTable,
    tick_ms: i64,
    version: &str,
) -> Result<Vec<MaintenancePredicted>> {
    if table.units().is_empty() {
        return Ok(Vec::new());
    }
    let tick = DateTime::from_timestamp_millis(tick_ms).context("tick out of range")?;
    let recent = model.predict_recent(table, rule.persist)?;
    let mut by_unit: BTreeMap<&str, Vec<&Prediction>> = BTreeMap::new();
    for p in &recent {
        by_unit.entry(p.unit.as_str()).or_default().push(p);
    }
    let mut out = Vec::with_capacity(table.units().len());
    for unit in table.units() {
        let Some(rows) = by_unit.get(unit.id()) else { continue };
        let Some(p) = rows.last() else { continue };
        let run_start = unit.times().first().copied().unwrap_or(p.time);
        let due = rule.alert_at(rows, run_start);
        // The features are as of the end of the last complete hour; the prediction is
        // issued at the tick, that much later.
        let age = (maintenance::days_of_ms(tick_ms) - p.time).max(0.0);
        let days = (p.predicted_rul - age).max(0.0);
        out.push(MaintenancePredicted {
            machine_id: p.unit.clone(),
            at: tick,
            days,
            lower_days: (p.lower - age).max(0.0).min(days),
            upper_days: (p.upper - age).max(days),
            model_version: version.to_owned(),
            failure_probability: p.failure_probability,
            due: Some(due),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap_or_default()
    }

    fn machine(id: &str, machine_type: &str, open_order: bool, scheduled_for: Option<i64>) -> MachineRow {
        MachineRow {
            id: id.into(),
            machine_type: machine_type.into(),
            last_performed_at: None,
            open_order,
            scheduled_for: scheduled_for.map(at),
        }
    }

    #[test]
    fn given_machines_in_service_or_unknown_when_choosing_then_each_is_left_out_with_its_reason() {
        let tick = 10 * DAY_MS;
        let machines = [
            machine("m1", "cnc", false, None),
            // An order due before the tick: under maintenance; one due later: still working.
            machine("m2", "cnc", true, Some(tick - HOUR_MS)),
            machine("m3", "cnc", true, Some(tick + DAY_MS)),
            machine("m4", "oven", false, None),
            // No sensors recorded.
            machine("m5", "cnc", false, None),
        ];
        let mut sensors: HashMap<String, Vec<(u32, String)>> = HashMap::new();
        for (id, first) in [("m1", 1), ("m2", 11), ("m3", 21), ("m4", 31)] {
            sensors.insert(id.into(), vec![(first, "TEMP".into()), (first + 1, "VIB".into())]);
        }
        let columns = FactoryColumns::new(vec!["cnc.TEMP.level".into(), "cnc.VIB.peak".into()]);
        let (chosen, skipped) = eligible(&machines, &sensors, &columns, at(tick));
        let ids: Vec<&str> = chosen.iter().map(|(m, _)| m.id.as_str()).collect();
        assert_eq!(ids, ["m1", "m3"]);
        assert_eq!(skipped, Skipped { in_maintenance: 1, unknown_to_model: 2, without_readings: 0 });
    }

    #[test]
    fn given_feature_windows_and_persistence_when_planning_then_the_hours_cover_both() {
        let config = FeatureConfig { windows: vec![1.0, 3.0], baseline_window: 0.5 };
        let tick = 100 * DAY_MS + 20 * 60_000;
        let at_once = Window::new(&config, &AlertRule::lower_bound(7.0), tick).unwrap();
        assert_eq!(at_once.until, at(100 * DAY_MS));
        assert_eq!(at_once.recent_start, at(97 * DAY_MS - HOUR_MS));
        // Held for 6 hours: the features of the hour 6 hours back need their 3 days too.
        let held = Window::new(&config, &AlertRule::probability(7.0, 0.3, 0.25), tick).unwrap();
        assert_eq!(held.recent_start, at(97 * DAY_MS - 7 * HOUR_MS));
        let range = held.range("m1", at(90 * DAY_MS)).unwrap();
        assert_eq!((range.first, range.baseline_end), (at(90 * DAY_MS), at(90 * DAY_MS + DAY_MS / 2)));
        assert_eq!((range.recent_start, range.until), (held.recent_start, held.until));
        assert!(Window::new(&config, &AlertRule::lower_bound(7.0), i64::MAX).is_err());
    }
}
