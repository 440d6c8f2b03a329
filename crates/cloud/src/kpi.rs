//! KPI deltas: what a batch of events adds to each group's hour and day. Every figure is
//! a whole-number sum, so deltas add up exactly in any order and a rebuild gives the same
//! rows as the live run.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use eventlog::Transaction;

use crate::layouts::Group;

/// The sums of one group in one bucket (see `cloud.kpi_hour`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub readings: i64,
    pub sensor_hours: i64,
    pub anomalies_minor: i64,
    pub anomalies_major: i64,
    pub anomalies_critical: i64,
    pub acknowledged: i64,
    pub ack_ms: i64,
    pub maintenance_performed: i64,
    pub failures: i64,
    pub predictions: i64,
    pub predicted_millidays: i64,
    pub planned_ms: i64,
    pub running_ms: i64,
    pub parts: i64,
    pub good_parts: i64,
    pub ideal_ms: i64,
}

impl Sums {
    fn columns(&self) -> [i64; 16] {
        [
            self.readings,
            self.sensor_hours,
            self.anomalies_minor,
            self.anomalies_major,
            self.anomalies_critical,
            self.acknowledged,
            self.ack_ms,
            self.maintenance_performed,
            self.failures,
            self.predictions,
            self.predicted_millidays,
            self.planned_ms,
            self.running_ms,
            self.parts,
            self.good_parts,
            self.ideal_ms,
        ]
    }

    fn add(&mut self, o: &Sums) {
        let a = self.columns();
        let b = o.columns();
        let c: Vec<i64> = a.iter().zip(b).map(|(x, y)| x.saturating_add(y)).collect();
        *self = Sums {
            readings: c[0],
            sensor_hours: c[1],
            anomalies_minor: c[2],
            anomalies_major: c[3],
            anomalies_critical: c[4],
            acknowledged: c[5],
            ack_ms: c[6],
            maintenance_performed: c[7],
            failures: c[8],
            predictions: c[9],
            predicted_millidays: c[10],
            planned_ms: c[11],
            running_ms: c[12],
            parts: c[13],
            good_parts: c[14],
            ideal_ms: c[15],
        };
    }
}

/// The start of the hour holding `t`.
pub fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

/// The start of the (UTC) day holding `t`.
pub fn day_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::days(1)).unwrap_or(t)
}

type Key = (u16, Group, DateTime<Utc>);

/// Deltas collected over a batch, per group and hour.
#[derive(Debug, Default)]
pub struct Deltas {
    hours: BTreeMap<Key, (Sums, i64)>,
}

impl Deltas {
    /// Adds `sums` to `group` of `plant` in the hour of `at`, caused by the event at `position`.
    pub fn add(&mut self, plant: u16, group: &Group, at: DateTime<Utc>, position: i64, sums: Sums) {
        let entry = self.hours.entry((plant, group.clone(), hour_of(at))).or_insert((Sums::default(), position));
        entry.0.add(&sums);
        entry.1 = entry.1.max(position);
    }

    pub fn is_empty(&self) -> bool {
        self.hours.is_empty()
    }

    /// Adds the deltas to `cloud.kpi_hour` and `cloud.kpi_day`.
    pub async fn write(self, tx: &Transaction<'_>) -> Result<()> {
        if self.hours.is_empty() {
            return Ok(());
        }
        let mut days: BTreeMap<Key, (Sums, i64)> = BTreeMap::new();
        for ((plant, group, hour), (sums, position)) in &self.hours {
            let entry = days.entry((*plant, group.clone(), day_of(*hour))).or_insert((Sums::default(), *position));
            entry.0.add(sums);
            entry.1 = entry.1.max(*position);
        }
        write_rows(tx, &ADD[0], &self.hours).await?;
        write_rows(tx, &ADD[1], &days).await
    }
}

/// A KPI table: the hour and the day table hold the same columns but for the bucket's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KpiTable {
    pub table: &'static str,
    pub bucket: &'static str,
}

pub const KPI_HOUR: KpiTable = KpiTable { table: "kpi_hour", bucket: "hour" };
pub const KPI_DAY: KpiTable = KpiTable { table: "kpi_day", bucket: "day" };

impl KpiTable {
    /// `sql` written for both tables (`{table}`, `{bucket}`), for this one. Only the two
    /// constant names above ever go in.
    pub fn sql(self, sql: &str) -> String {
        sql.replace("{table}", self.table).replace("{bucket}", self.bucket)
    }
}

static ADD: std::sync::LazyLock<[String; 2]> =
    std::sync::LazyLock::new(|| [KPI_HOUR, KPI_DAY].map(|t| t.sql(include_str!("../sql/add_kpi.sql"))));

async fn write_rows(tx: &Transaction<'_>, sql: &str, rows: &BTreeMap<Key, (Sums, i64)>) -> Result<()> {
    let plants: Vec<i16> = rows.keys().map(|(p, ..)| *p as i16).collect();
    let lines: Vec<&str> = rows.keys().map(|(_, g, _)| g.line_id.as_str()).collect();
    let types: Vec<&str> = rows.keys().map(|(_, g, _)| g.machine_type.as_str()).collect();
    let times: Vec<DateTime<Utc>> = rows.keys().map(|(.., t)| *t).collect();
    let positions: Vec<i64> = rows.values().map(|(_, p)| *p).collect();
    let columns: Vec<Vec<i64>> = (0..16).map(|c| rows.values().map(|(s, _)| s.columns()[c]).collect()).collect();
    let stmt = tx.prepare_cached(sql).await?;
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&plants, &lines, &types, &times, &positions];
    for c in &columns {
        params.push(c);
    }
    tx.execute(&stmt, &params).await?;
    Ok(())
}
