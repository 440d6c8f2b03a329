//! The factory's feature columns: one row per machine and clock hour, built from hourly
//! sensor aggregates, the same way for training (from recorded readings) and for scoring
//! (from the plant's `sensor_hour` read model).
//!
//! A machine's sensors are grouped by kind (`TEMP`, `VIB`, …). For every group and hour,
//! two values: the *level*, the median over the group's sensors of their hourly means, and
//! the *peak*, the median of their hourly maxima. The median keeps one faulty sensor
//! (stuck, shifted, spiking) from moving the group. Columns are named
//! `<machine type>.<KIND>.level|peak`, so each machine type has columns of its own: a
//! kind means different things on different machines (an oven's temperature falls as its
//! heaters wear, a pump's rises), and the trees route other machines' missing values down
//! their own branch. A row's time is the end of its hour, in days since the Unix epoch:
//! the moment its data is complete.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::error::Error;

/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;
/// The statistics kept per sensor group and hour, in column order.
pub const GROUP_STATS: [&str; 2] = ["level", "peak"];
/// At most this many sensors on one machine.
pub const MAX_MACHINE_SENSORS: usize = 4_096;

/// One sensor's aggregate over one clock hour (`hour_ms` is the hour's start, ms since
/// the Unix epoch), as the plant's `sensor_hour` read model holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SensorHour {
    pub sensor: u32,
    pub hour_ms: i64,
    pub count: i64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

/// The row time of an hour: its end, in days since the Unix epoch.
pub fn hour_row_time(hour_ms: i64) -> f64 {
    (hour_ms.saturating_add(HOUR_MS)) as f64 / DAY_MS as f64
}

/// Days since the Unix epoch for a time in milliseconds.
pub fn days_of_ms(ms: i64) -> f64 {
    ms as f64 / DAY_MS as f64
}

/// The start of the clock hour holding `ms`.
pub fn hour_of_ms(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// One machine's sensors grouped by kind.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineSchema {
    machine_type: String,
    /// Kinds, sorted.
    kinds: Vec<String>,
    /// Sensor id → index into `kinds`.
    sensor_kind: HashMap<u32, usize>,
}

impl MachineSchema {
    /// A machine of `machine_type` with these `(sensor id, kind)` pairs.
    pub fn new<'a>(machine_type: &str, sensors: impl IntoIterator<Item = (u32, &'a str)>) -> Result<Self, Error> {
        let name_ok = |s: &str| !s.trim().is_empty() && !s.contains('.') && s.len() <= 64;
        if !name_ok(machine_type) {
            return Err(Error::InvalidOption {
                name: "machine_type",
                reason: format!("`{machine_type}` is empty, too long or contains a dot"),
            });
        }
        let pairs: Vec<(u32, &str)> = sensors.into_iter().collect();
        if pairs.len() > MAX_MACHINE_SENSORS {
            return Err(Error::InvalidOption {
                name: "sensors",
                reason: format!("{} sensors on one machine (at most {MAX_MACHINE_SENSORS})", pairs.len()),
            });
        }
        let mut kinds = BTreeSet::new();
        for (_, kind) in &pairs {
            if !name_ok(kind) {
                return Err(Error::InvalidOption {
                    name: "kind",
                    reason: format!("sensor kind `{kind}` is empty, too long or contains a dot"),
                });
            }
            kinds.insert(kind.to_string());
        }
        let kinds: Vec<String> = kinds.into_iter().collect();
        let mut sensor_kind = HashMap::with_capacity(pairs.len());
        for (sensor, kind) in pairs {
            let k = kinds.iter().position(|x| x == kind).unwrap_or_default();
            if sensor_kind.insert(sensor, k).is_some_and(|previous| previous != k) {
                return Err(Error::InvalidOption {
                    name: "sensors",
                    reason: format!("sensor {sensor} is listed with two kinds"),
                });
            }
        }
        Ok(MachineSchema { machine_type: machine_type.to_string(), kinds, sensor_kind })
    }

    pub fn machine_type(&self) -> &str {
        &self.machine_type
    }

    /// Whether a sensor belongs to this machine.
    pub fn has_sensor(&self, sensor: u32) -> bool {
        self.sensor_kind.contains_key(&sensor)
    }

    /// The sensor ids of the machine, sorted.
    pub fn sensors(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.sensor_kind.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// This machine's column names.
    pub fn columns(&self) -> Vec<String> {
        self.kinds
            .iter()
            .flat_map(|k| GROUP_STATS.iter().map(move |s| format!("{}.{k}.{s}", self.machine_type)))
            .collect()
    }
}

/// The columns of a factory table and where each machine's values go.
#[derive(Debug, Clone, PartialEq)]
pub struct FactoryColumns {
    columns: Vec<String>,
    index: HashMap<String, usize>,
}

impl FactoryColumns {
    /// Every column of these machines, sorted: the training table's columns.
    pub fn of_machines<'a>(schemas: impl IntoIterator<Item = &'a MachineSchema>) -> FactoryColumns {
        let set: BTreeSet<String> = schemas.into_iter().flat_map(MachineSchema::columns).collect();
        Self::new(set.into_iter().collect())
    }

    /// Exactly these columns (a model's input columns, for scoring).
    pub fn new(columns: Vec<String>) -> FactoryColumns {
        let index = columns.iter().enumerate().map(|(i, c)| (c.clone(), i)).collect();
        FactoryColumns { columns, index }
    }

    pub fn names(&self) -> &[String] {
        &self.columns
    }

    /// Whether any of the machine's columns is one of these (else there is nothing to score
    /// it on).
    pub fn covers(&self, schema: &MachineSchema) -> bool {
        schema.columns().iter().any(|c| self.index.contains_key(c))
    }

    /// One machine's row for one hour from its sensors' aggregates of that hour: a value per
    /// column, `NaN` where the machine has no such column or no sensor of the group
    /// reported. Aggregates of other machines' sensors and empty ones are ignored.
    pub fn row(&self, schema: &MachineSchema, hour: &[SensorHour]) -> Vec<f64> {
        let mut by_kind: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); schema.kinds.len()];
        for h in hour {
            if h.count <= 0 || !h.mean.is_finite() || !h.max.is_finite() {
                continue;
            }
            if let Some(&k) = schema.sensor_kind.get(&h.sensor) {
                by_kind[k].0.push(h.mean);
                by_kind[k].1.push(h.max);
            }
        }
        let mut row = vec![f64::NAN; self.columns.len()];
        for (k, kind) in schema.kinds.iter().enumerate() {
            let (means, maxima) = &mut by_kind[k];
            for (stat, values) in GROUP_STATS.iter().zip([means, maxima]) {
                let name = format!("{}.{kind}.{stat}", schema.machine_type);
                if let Some(&at) = self.index.get(&name) {
                    row[at] = median(values);
                }
            }
        }
        row
    }

    /// Rows for every hour of one machine's aggregates (any order), as `(row time, values)`
    /// in time order.
    pub fn rows(&self, schema: &MachineSchema, hours: &[SensorHour]) -> Vec<(f64, Vec<f64>)> {
        let mut by_hour: BTreeMap<i64, Vec<SensorHour>> = BTreeMap::new();
        for h in hours.iter().filter(|h| schema.has_sensor(h.sensor)) {
            by_hour.entry(h.hour_ms).or_default().push(*h);
        }
        by_hour.into_iter().map(|(hour_ms, hs)| (hour_row_time(hour_ms), self.row(schema, &hs))).collect()
    }
}

/// Median of finite values; `NaN` when there are none. Sorts in place.
fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(sensor: u32, hour_ms: i64, mean: f64, max: f64) -> SensorHour {
        SensorHour { sensor, hour_ms, count: 60, min: mean - 1.0, max, mean }
    }

    fn cnc() -> MachineSchema {
        MachineSchema::new("cnc", [(1, "TEMP"), (2, "TEMP"), (3, "TEMP"), (4, "VIB")]).unwrap()
    }

    #[test]
    fn given_a_machine_when_naming_columns_then_they_are_type_kind_stat() {
        assert_eq!(cnc().columns(), ["cnc.TEMP.level", "cnc.TEMP.peak", "cnc.VIB.level", "cnc.VIB.peak"]);
        let oven = MachineSchema::new("oven", [(9, "TEMP")]).unwrap();
        let cols = FactoryColumns::of_machines([&cnc(), &oven, &cnc()]);
        assert_eq!(cols.names().len(), 6);
        assert_eq!(cols.names()[4], "oven.TEMP.level");
    }

    #[test]
    fn given_one_faulty_sensor_when_building_a_row_then_the_median_ignores_it() {
        let cols = FactoryColumns::of_machines([&cnc()]);
        let row = cols.row(
            &cnc(),
            &[hour(1, 0, 40.0, 41.0), hour(2, 0, 41.0, 43.0), hour(3, 0, 400.0, 900.0), hour(4, 0, 2.0, 2.5)],
        );
        assert_eq!(row, vec![41.0, 43.0, 2.0, 2.5]);
        // Two sensors: the mean of both; none reporting: missing.
        let row = cols.row(&cnc(), &[hour(1, 0, 40.0, 41.0), hour(2, 0, 42.0, 43.0), hour(99, 0, 1.0, 1.0)]);
        assert_eq!(&row[..2], &[41.0, 42.0]);
        assert!(row[2].is_nan() && row[3].is_nan());
    }

    #[test]
    fn given_a_model_without_a_column_when_building_a_row_then_it_is_left_out() {
        let cols = FactoryColumns::new(vec!["cnc.VIB.level".into(), "press.VIB.level".into()]);
        assert!(cols.covers(&cnc()));
        assert!(!cols.covers(&MachineSchema::new("oven", [(9, "TEMP")]).unwrap()));
        let row = cols.row(&cnc(), &[hour(4, 0, 2.0, 2.5), hour(1, 0, 40.0, 41.0)]);
        assert_eq!(row[0], 2.0);
        assert!(row[1].is_nan());
    }

    #[test]
    fn given_hours_in_any_order_when_building_rows_then_they_come_in_time_order_at_hour_ends() {
        let cols = FactoryColumns::of_machines([&cnc()]);
        let rows =
            cols.rows(&cnc(), &[hour(1, 2 * HOUR_MS, 3.0, 3.0), hour(1, 0, 1.0, 1.0), hour(7, HOUR_MS, 1.0, 1.0)]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, 1.0 / 24.0);
        assert_eq!(rows[1].0, 3.0 / 24.0);
        assert_eq!(rows[1].1[0], 3.0);
    }

    #[test]
    fn given_bad_names_when_building_a_schema_then_they_are_refused() {
        assert!(MachineSchema::new("", [(1, "TEMP")]).is_err());
        assert!(MachineSchema::new("a.b", [(1, "TEMP")]).is_err());
        assert!(MachineSchema::new("cnc", [(1, "")]).is_err());
        assert!(MachineSchema::new("cnc", [(1, "TEMP"), (1, "VIB")]).is_err());
        assert!(MachineSchema::new("cnc", [(1, "TEMP"), (1, "TEMP")]).is_ok());
        let many: Vec<(u32, &str)> = (0..=MAX_MACHINE_SENSORS as u32).map(|i| (i, "T")).collect();
        assert!(MachineSchema::new("cnc", many).is_err());
    }

    #[test]
    fn hour_helpers_agree() {
        assert_eq!(hour_of_ms(HOUR_MS + 5), HOUR_MS);
        assert_eq!(hour_of_ms(-1), -HOUR_MS);
        assert_eq!(hour_row_time(0), 1.0 / 24.0);
        assert_eq!(days_of_ms(DAY_MS), 1.0);
    }
}
