//! A stand-in plant for tests and benchmarks (feature `fixture`): it installs the read
//! models in a database, writes rows the way the projections do (every row with its
//! position, one NOTIFY per applied batch), and serves a command API that records what
//! it receives and applies it to the read models like the plant node would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio_postgres::{Client, NoTls};

const V1: &str = include_str!("../../readmodels/migrations/V1__read_models.sql");
const V2: &str = include_str!("../../readmodels/migrations/V2__reader_role.sql");
/// The reader's password in fixture databases.
pub const READER_PASSWORD: &str = "fixture-reader";

/// Machine types of a line: (type, machines, sensors each), as in the plant layout.
const LINE_MACHINES: [(&str, usize, usize); 5] =
    [("cnc", 20, 20), ("press", 10, 16), ("pump", 10, 14), ("conveyor", 20, 8), ("oven", 7, 20)];
const KINDS: [(&str, &str, f64, f64); 5] = [
    ("temperature", "°C", 40.0, 60.0),
    ("vibration", "mm/s", 0.5, 4.5),
    ("pressure", "bar", 5.0, 7.0),
    ("current", "A", 10.0, 30.0),
    ("speed", "rpm", 1400.0, 1600.0),
];

/// How big the stand-in plant is.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub lines: usize,
    /// `None`: the full line of 67 machines and 1,000 sensors; `Some((machines, sensors))`: a small one.
    pub small: Option<(usize, usize)>,
}

impl Layout {
    /// 10 lines × 67 machines = 10,000 sensors, like a real plant.
    pub fn full() -> Layout {
        Layout { lines: 10, small: None }
    }

    pub fn small(lines: usize, machines: usize, sensors: usize) -> Layout {
        Layout { lines, small: Some((machines, sensors)) }
    }

    fn machines(&self) -> Vec<(String, String, i32, String, usize)> {
        let mut out = Vec::new();
        for l in 1..=self.lines {
            let line = format!("P1-L{l:02}");
            let kinds: Vec<(&str, usize, usize)> = match self.small {
                Some((m, s)) => vec![("cnc", m, s)],
                None => LINE_MACHINES.to_vec(),
            };
            let mut n = 0;
            for (t, count, sensors) in kinds {
                for _ in 0..count {
                    n += 1;
                    out.push((format!("{line}-M{n:03}"), line.clone(), n, t.to_string(), sensors));
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
struct FxSensor {
    id: i32,
    machine: String,
    lo: f64,
    hi: f64,
    phase: f64,
}

/// Writes read-model rows into one plant database.
pub struct PlantFixture {
    client: Client,
    url: String,
    position: i64,
    sensors: Vec<FxSensor>,
    machines: Vec<(String, String)>,
    lines: Vec<String>,
    anomalies: u32,
    /// Sensor id → (value offset, status) while a fault is injected.
    faults: HashMap<i32, (f64, &'static str)>,
}

impl std::fmt::Debug for PlantFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlantFixture").field("position", &self.position).finish_non_exhaustive()
    }
}

fn ts(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The reader's URL for a superuser URL of the same database.
pub fn reader_url(admin_url: &str) -> String {
    match (admin_url.find("://"), admin_url.rfind('@')) {
        (Some(s), Some(at)) => {
            format!("{}floorwatch_reader:{READER_PASSWORD}@{}", &admin_url[..s + 3], &admin_url[at + 1..])
        }
        _ => admin_url.to_string(),
    }
}

impl PlantFixture {
    /// Installs the read models (both migrations, default partitions for history, a
    /// password for the reader) and connects as the owner.
    pub async fn install(admin_url: &str) -> Result<PlantFixture> {
        // The reader role is shared by every database of the cluster: install one at a time.
        static INSTALL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one_at_a_time = INSTALL.lock().await;
        let client = connect(admin_url).await?;
        let installed =
            client.query_one("SELECT to_regclass('readmodel.projections') IS NOT NULL", &[]).await?.get::<_, bool>(0);
        if !installed {
            client.batch_execute(V1).await.context("applying V1__read_models.sql")?;
            client.batch_execute(V2).await.context("applying V2__reader_role.sql")?;
            client
                .batch_execute(&format!(
                    "ALTER ROLE floorwatch_reader PASSWORD '{READER_PASSWORD}';
                     CREATE TABLE readmodel.sensor_history_default PARTITION OF readmodel.sensor_history DEFAULT;
                     CREATE TABLE readmodel.sensor_minute_default PARTITION OF readmodel.sensor_minute DEFAULT;
                     GRANT SELECT ON ALL TABLES IN SCHEMA readmodel TO floorwatch_reader;"
                ))
                .await?;
        }
        let position: i64 =
            client.query_one("SELECT coalesce(max(position), 0)::bigint FROM readmodel.projections", &[]).await?.get(0);
        Ok(PlantFixture {
            client,
            url: admin_url.to_string(),
            position,
            sensors: Vec::new(),
            machines: Vec::new(),
            lines: Vec::new(),
            anomalies: 0,
            faults: HashMap::new(),
        })
    }

    pub fn position(&self) -> i64 {
        self.position
    }

    pub fn sensor_ids(&self, machine_id: &str) -> Vec<i32> {
        self.sensors.iter().filter(|s| s.machine == machine_id).map(|s| s.id).collect()
    }

    pub fn machine_ids(&self) -> Vec<String> {
        self.machines.iter().map(|m| m.0.clone()).collect()
    }

    /// Reconnects after the server was restarted, as the projections' runner would.
    async fn reconnect_if_closed(&mut self) -> Result<()> {
        if self.client.is_closed() {
            self.client = connect(&self.url).await?;
        }
        Ok(())
    }

    /// Ends a batch the way a projection runner does: its checkpoint, then one NOTIFY.
    async fn finish_batch(&self) -> Result<()> {
        self.client
            .execute(
                "INSERT INTO readmodel.projections (name, position) VALUES ('plant', $1)
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = now()",
                &[&self.position],
            )
            .await?;
        self.client.batch_execute("COMMIT").await?;
        self.client.execute("SELECT pg_notify('readmodel', $1)", &[&self.position.to_string()]).await?;
        Ok(())
    }

    /// Writes the plant's layout and a first value of every sensor.
    pub async fn seed(&mut self, layout: Layout, now_ms: i64) -> Result<i64> {
        self.reconnect_if_closed().await?;
        self.client.batch_execute("BEGIN").await?;
        self.position += 1;
        let p = self.position;
        let machines = layout.machines();
        let sensor_total: usize = machines.iter().map(|m| m.4).sum();
        let c = &self.client;
        c.execute(
            "INSERT INTO readmodel.plant VALUES ('P1', 'Lyon', $1, $2, $3, $4)",
            &[&(layout.lines as i32), &(machines.len() as i32), &(sensor_total as i32), &p],
        )
        .await?;
        let mut next_id = 1_000_000i32;
        let (mut m_ids, mut m_lines, mut m_numbers, mut m_types, mut m_sensors) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut s_ids, mut s_names, mut s_machines, mut s_kinds, mut s_units, mut s_lo, mut s_hi) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for (mid, line, number, mtype, count) in &machines {
            m_ids.push(mid.clone());
            m_lines.push(line.clone());
            m_numbers.push(*number);
            m_types.push(mtype.clone());
            m_sensors.push(*count as i32);
            for k in 0..*count {
                let (kind, unit, lo, hi) = KINDS[k % KINDS.len()];
                let code = &kind[..4].to_uppercase();
                s_ids.push(next_id);
                s_names.push(format!("{mid}-{code}{}", k / KINDS.len() + 1));
                s_machines.push(mid.clone());
                s_kinds.push(kind.to_string());
                s_units.push(unit.to_string());
                s_lo.push(lo);
                s_hi.push(hi);
                self.sensors.push(FxSensor {
                    id: next_id,
                    machine: mid.clone(),
                    lo,
                    hi,
                    phase: f64::from(next_id % 97) / 97.0 * std::f64::consts::TAU,
                });
                next_id += 1;
            }
            self.machines.push((mid.clone(), line.clone()));
        }
        for l in 1..=layout.lines {
            let line = format!("P1-L{l:02}");
            let n = machines.iter().filter(|m| m.1 == line).count() as i32;
            let s: i32 = machines.iter().filter(|m| m.1 == line).map(|m| m.4 as i32).sum();
            c.execute("INSERT INTO readmodel.lines VALUES ($1, $2, $3, $4, $5)", &[&line, &(l as i32), &n, &s, &p])
                .await?;
            self.lines.push(line);
        }
        c.execute(
            "INSERT INTO readmodel.machines
             SELECT id, line, num, t, initcap(t) || ' ' || num, s, $6
             FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::int[]) AS u(id, line, num, t, s)",
            &[&m_ids, &m_lines, &m_numbers, &m_types, &m_sensors, &p],
        )
        .await?;
        c.execute(
            "INSERT INTO readmodel.sensors
             SELECT * , $8::bigint FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[])",
            &[&s_ids, &s_names, &s_machines, &s_kinds, &s_units, &s_lo, &s_hi, &p],
        )
        .await?;
        c.execute(
            "INSERT INTO readmodel.maintenance (machine_id, predicted_days, lower_days, upper_days, predicted_at, model_version, position)
             SELECT id, 3 + (row_number() OVER ()) % 60, 1 + (row_number() OVER ()) % 60 * 0.8,
                    6 + (row_number() OVER ()) % 60 * 1.3, $2, 'fixture-1', $3 FROM unnest($1::text[]) AS u(id)",
            &[&m_ids, &ts(now_ms), &p],
        )
        .await?;
        self.write_state(now_ms, p).await?;
        self.finish_batch().await?;
        Ok(self.position)
    }

    fn value(&self, s: &FxSensor, now_ms: i64) -> (f64, &'static str) {
        let mid = (s.lo + s.hi) / 2.0;
        let amp = (s.hi - s.lo) * 0.3;
        let t = now_ms as f64 / 1000.0;
        let noise = ((t * 12.9898 + f64::from(s.id) * 78.233).sin() * 43758.5453).fract() * amp * 0.2;
        let base = mid + amp * (t / 300.0 + s.phase).sin() + noise;
        match self.faults.get(&s.id) {
            Some((offset, status)) => (base + offset, status),
            None => (base, "ok"),
        }
    }

    /// Writes every sensor's value and every roll-up at `now_ms` inside the open batch.
    async fn write_state(&self, now_ms: i64, p: i64) -> Result<()> {
        let ids: Vec<i32> = self.sensors.iter().map(|s| s.id).collect();
        let machines: Vec<String> = self.sensors.iter().map(|s| s.machine.clone()).collect();
        let (values, statuses): (Vec<f64>, Vec<String>) =
            self.sensors.iter().map(|s| self.value(s, now_ms)).map(|(v, st)| (v, st.to_string())).unzip();
        let c = &self.client;
        c.execute(
            "INSERT INTO readmodel.sensor_state (sensor_id, machine_id, value, ts, status, position)
             SELECT id, m, v, $5, st, $6 FROM unnest($1::int[], $2::text[], $3::float8[], $4::text[]) AS u(id, m, v, st)
             ON CONFLICT (sensor_id) DO UPDATE SET value = excluded.value, ts = excluded.ts,
                 status = excluded.status, position = excluded.position",
            &[&ids, &machines, &values, &statuses, &ts(now_ms), &p],
        )
        .await?;
        // Roll-ups from the sensors and the open anomalies, as the projections keep them.
        c.execute(
            "INSERT INTO readmodel.machine_status
             SELECT m.machine_id, m.line_id,
                    CASE WHEN coalesce(a.crit, 0) + coalesce(a.maj, 0) + coalesce(a.min, 0) > 0 THEN 'anomaly'
                         WHEN coalesce(s.warn, 0) > 0 THEN 'warning'
                         WHEN mt.lower_days <= 7 THEN 'service' ELSE 'ok' END,
                    m.sensors, coalesce(s.n, 0), 0, coalesce(s.warn, 0), coalesce(s.anom, 0),
                    coalesce(a.crit, 0), coalesce(a.maj, 0), coalesce(a.min, 0), mt.lower_days, $1, $2
             FROM readmodel.machines m
             LEFT JOIN (SELECT machine_id, count(*)::int n, (count(*) FILTER (WHERE status = 'warning'))::int warn,
                               (count(*) FILTER (WHERE status = 'anomalous'))::int anom
                        FROM readmodel.sensor_state GROUP BY machine_id) s USING (machine_id)
             LEFT JOIN (SELECT machine_id, (count(*) FILTER (WHERE severity = 'critical'))::int crit,
                               (count(*) FILTER (WHERE severity = 'major'))::int maj,
                               (count(*) FILTER (WHERE severity = 'minor'))::int min
                        FROM readmodel.anomalies WHERE state IN ('new', 'acknowledged') GROUP BY machine_id) a USING (machine_id)
             LEFT JOIN readmodel.maintenance mt USING (machine_id)
             ON CONFLICT (machine_id) DO UPDATE SET status = excluded.status, reporting = excluded.reporting,
                 warning = excluded.warning, anomalous = excluded.anomalous, open_critical = excluded.open_critical,
                 open_major = excluded.open_major, open_minor = excluded.open_minor, due_in_days = excluded.due_in_days,
                 newest_reading = excluded.newest_reading, position = excluded.position",
            &[&ts(now_ms), &p],
        )
        .await?;
        let sums = "sum(sensors)::int, sum(reporting)::int, sum(stale)::int, sum(warning)::int, sum(anomalous)::int,
                    sum(open_critical)::int, sum(open_major)::int, sum(open_minor)::int,
                    (count(*) FILTER (WHERE due_in_days <= 7))::int, sum(reporting)::float8, max(newest_reading), $1::bigint";
        let update = "sensors = excluded.sensors, reporting = excluded.reporting, warning = excluded.warning,
                      anomalous = excluded.anomalous, open_critical = excluded.open_critical,
                      open_major = excluded.open_major, open_minor = excluded.open_minor,
                      machines_due_7d = excluded.machines_due_7d, readings_per_s = excluded.readings_per_s,
                      newest_reading = excluded.newest_reading, position = excluded.position";
        c.execute(
            &format!(
                "INSERT INTO readmodel.line_status SELECT line_id, {sums} FROM readmodel.machine_status GROUP BY line_id
                 ON CONFLICT (line_id) DO UPDATE SET {update}"
            ),
            &[&p],
        )
        .await?;
        c.execute(
            &format!(
                "INSERT INTO readmodel.plant_status SELECT 'P1', {sums} FROM readmodel.machine_status
                 ON CONFLICT (plant_id) DO UPDATE SET {update}"
            ),
            &[&p],
        )
        .await?;
        Ok(())
    }

    /// One applied batch: every sensor's value at `now_ms` and the roll-ups.
    pub async fn tick(&mut self, now_ms: i64) -> Result<i64> {
        self.reconnect_if_closed().await?;
        self.client.batch_execute("BEGIN").await?;
        self.position += 1;
        self.write_state(now_ms, self.position).await?;
        self.finish_batch().await?;
        Ok(self.position)
    }

    /// Opens an anomaly on a sensor (its value jumps) as the monitor would; returns its id.
    pub async fn raise_anomaly(&mut self, sensor_id: i32, severity: &str, now_ms: i64) -> Result<String> {
        self.reconnect_if_closed().await?;
        let s = self.sensors.iter().find(|s| s.id == sensor_id).cloned().context("no such fixture sensor")?;
        let offset = (s.hi - s.lo) * 1.2;
        self.faults.insert(sensor_id, (offset, "anomalous"));
        self.anomalies += 1;
        let id = format!("P1-A{:05}", self.anomalies);
        let (observed, _) = self.value(&s, now_ms);
        let line = self.machines.iter().find(|m| m.0 == s.machine).map(|m| m.1.clone()).unwrap_or_default();
        let name: String = self
            .client
            .query_one("SELECT name FROM readmodel.sensors WHERE sensor_id = $1", &[&sensor_id])
            .await?
            .get(0);
        let sensors = json!([{
            "sensor": sensor_id, "name": name, "kind": "level_shift", "observed": observed,
            "expected": (s.lo + s.hi) / 2.0, "lower": s.lo, "upper": s.hi, "test": "level shift", "score": 0.97
        }]);
        let explanation =
            format!("{name} read {observed:.1}, above its expected band {:.1}–{:.1} for 3 readings", s.lo, s.hi);
        self.client.batch_execute("BEGIN").await?;
        self.position += 1;
        let p = self.position;
        self.client
            .execute(
                "INSERT INTO readmodel.anomalies (anomaly_id, machine_id, line_id, severity, state, score, sensors,
                     explanation, started_at, updated_at, position)
                 VALUES ($1, $2, $3, $4, 'new', 0.97, $5, $6, $7, $7, $8)",
                &[&id, &s.machine, &line, &severity, &sensors, &explanation, &ts(now_ms), &p],
            )
            .await?;
        self.client
            .execute(
                "INSERT INTO readmodel.audit (position, recorded_at, stream, event_type, machine_id, actor, summary)
                 VALUES ($1, $2, $3, 'AnomalyDetected', $4, 'monitor', $5)",
                &[&p, &ts(now_ms), &format!("anomaly-{id}"), &s.machine, &format!("{severity} anomaly on {name}")],
            )
            .await?;
        self.write_state(now_ms, p).await?;
        self.finish_batch().await?;
        Ok(id)
    }

    /// Applies a command as the plant node's handlers and projections would.
    pub async fn apply_command(&mut self, path: &str, body: &Value, now_ms: i64) -> Result<Option<i64>> {
        self.reconnect_if_closed().await?;
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let by = body["by"].as_str().unwrap_or("").to_string();
        let note = body["note"].as_str().or(body["text"].as_str()).unwrap_or("").to_string();
        let (anomaly, action) = match parts.as_slice() {
            ["v1", "commands", "anomalies", id, action] => ((*id).to_string(), *action),
            _ => return Ok(None),
        };
        let row = self
            .client
            .query_opt("SELECT state, notes, machine_id FROM readmodel.anomalies WHERE anomaly_id = $1", &[&anomaly])
            .await?;
        let Some(row) = row else { return Ok(None) };
        let state: String = row.get(0);
        let mut notes: Value = row.get(1);
        let machine: String = row.get(2);
        if !note.is_empty()
            && let Some(list) = notes.as_array_mut()
        {
            list.push(json!({"by": by, "at": ts(now_ms).to_rfc3339(), "text": note}));
        }
        self.client.batch_execute("BEGIN").await?;
        self.position += 1;
        let p = self.position;
        let (new_state, event) = match action {
            "acknowledge" => ("acknowledged".to_string(), "AnomalyAcknowledged"),
            "shelve" => ("shelved".to_string(), "AnomalyShelved"),
            _ => (state, "AnomalyNoteAdded"),
        };
        let until: Option<DateTime<Utc>> =
            body["until"].as_str().and_then(|u| DateTime::parse_from_rfc3339(u).ok()).map(|t| t.with_timezone(&Utc));
        self.client
            .execute(
                "UPDATE readmodel.anomalies SET state = $2, notes = $3, updated_at = $4, position = $5,
                     acknowledged_by = CASE WHEN $2 = 'acknowledged' THEN $6 ELSE acknowledged_by END,
                     acknowledged_at = CASE WHEN $2 = 'acknowledged' THEN $4 ELSE acknowledged_at END,
                     shelved_by = CASE WHEN $2 = 'shelved' THEN $6 ELSE shelved_by END,
                     shelved_until = CASE WHEN $2 = 'shelved' THEN $7 ELSE shelved_until END
                 WHERE anomaly_id = $1",
                &[&anomaly, &new_state, &notes, &ts(now_ms), &p, &by, &until],
            )
            .await?;
        self.client
            .execute(
                "INSERT INTO readmodel.audit (position, recorded_at, stream, event_type, machine_id, actor, summary)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &p,
                    &ts(now_ms),
                    &format!("anomaly-{anomaly}"),
                    &event,
                    &machine,
                    &by,
                    &format!("{event} {anomaly}: {note}"),
                ],
            )
            .await?;
        self.finish_batch().await?;
        Ok(Some(p))
    }

    /// Writes raw history (1 Hz) and minute and hour aggregates for sensors over [from, to).
    pub async fn write_history(&mut self, sensor_ids: &[i32], from_ms: i64, to_ms: i64) -> Result<()> {
        self.reconnect_if_closed().await?;
        self.client.batch_execute("BEGIN").await?;
        self.position += 1;
        let p = self.position;
        for id in sensor_ids {
            let Some(s) = self.sensors.iter().find(|s| s.id == *id).cloned() else { continue };
            let mut minute = from_ms - from_ms.rem_euclid(60_000);
            while minute < to_ms {
                let points: Vec<(i64, f64)> =
                    (0..60).map(|i| minute + i * 1000).map(|t| (t, self.value(&s, t).0)).collect();
                let chunk = telemetry::history::encode_chunk(&points)?;
                let (mut lo, mut hi, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
                for (_, v) in &points {
                    lo = lo.min(*v);
                    hi = hi.max(*v);
                    sum += v;
                }
                self.client
                    .execute(
                        "INSERT INTO readmodel.sensor_history (sensor_id, minute, readings, position) VALUES ($1, $2, $3, $4)
                         ON CONFLICT DO NOTHING",
                        &[id, &ts(minute), &chunk, &p],
                    )
                    .await?;
                self.client
                    .execute(
                        "INSERT INTO readmodel.sensor_minute (sensor_id, minute, count, min, max, mean, position)
                         VALUES ($1, $2, 60, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                        &[id, &ts(minute), &lo, &hi, &(sum / 60.0), &p],
                    )
                    .await?;
                minute += 60_000;
            }
            self.client
                .execute(
                    "INSERT INTO readmodel.sensor_hour
                     SELECT sensor_id, date_trunc('hour', minute), sum(count)::int, min(min), max(max), avg(mean), $2
                     FROM readmodel.sensor_minute WHERE sensor_id = $1 GROUP BY 1, 2
                     ON CONFLICT (sensor_id, hour) DO UPDATE SET count = excluded.count, min = excluded.min,
                         max = excluded.max, mean = excluded.mean, position = excluded.position",
                    &[id, &p],
                )
                .await?;
        }
        self.finish_batch().await?;
        Ok(())
    }

    /// Adds a prediction and a work order for a machine (its maintenance history).
    pub async fn write_maintenance_history(&mut self, machine_id: &str, now_ms: i64) -> Result<()> {
        self.reconnect_if_closed().await?;
        self.client.batch_execute("BEGIN").await?;
        self.position += 1;
        let p = self.position;
        for d in 0..14i64 {
            let at = now_ms - (14 - d) * 86_400_000;
            let days = 30.0 - d as f64 * 1.6;
            self.client
                .execute(
                    "INSERT INTO readmodel.maintenance_predictions (machine_id, predicted_at, days, lower_days, upper_days,
                         model_version, position)
                     VALUES ($1, $2, $3, $4, $5, 'fixture-1', $6)
                     ON CONFLICT DO NOTHING",
                    &[&machine_id, &ts(at), &days, &(days * 0.7), &(days * 1.4), &p],
                )
                .await?;
        }
        self.client
            .execute(
                "INSERT INTO readmodel.maintenance_log (order_id, machine_id, kind, state, scheduled_for, scheduled_by,
                     performed_at, performed_by, note, position)
                 VALUES ($1, $2, 'planned', 'performed', $3, 'planner', $3, 'tech', 'bearing greased', $4)
                 ON CONFLICT DO NOTHING",
                &[&format!("WO-{machine_id}-1"), &machine_id, &ts(now_ms - 20 * 86_400_000), &p],
            )
            .await?;
        self.finish_batch().await?;
        Ok(())
    }
}

async fn connect(url: &str) -> Result<Client> {
    let (client, connection) =
        tokio_postgres::connect(url, NoTls).await.context("connecting to the fixture database")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// One request the command stub received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub token: String,
    pub body: Value,
}

/// How the stub answers: normally it applies the command; tests can force answers.
#[derive(Debug, Clone, Default)]
pub struct StubBehaviour {
    /// Answer this status (with an error body) to the next requests, one per entry.
    pub forced: Vec<u16>,
}

/// A command API on a loopback port, answering like the plant node.
#[derive(Debug, Clone)]
pub struct CommandStub {
    pub addr: SocketAddr,
    pub token: String,
    received: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<StubBehaviour>>,
}

type FixtureSlot = Arc<tokio::sync::Mutex<Option<PlantFixture>>>;
/// What the stub's handler shares: requests seen, forced answers, the plant, the token,
/// and the answer given to each command id (for idempotent resends).
type StubState =
    (Arc<Mutex<Vec<Received>>>, Arc<Mutex<StubBehaviour>>, FixtureSlot, String, Arc<Mutex<HashMap<String, i64>>>);

impl CommandStub {
    /// Serves on 127.0.0.1 (a free port); applies accepted commands through `fixture` if given.
    pub async fn start(token: &str, fixture: FixtureSlot) -> Result<CommandStub> {
        use axum::extract::{Request, State};
        use axum::http::StatusCode;
        use axum::response::IntoResponse;

        let received = Arc::new(Mutex::new(Vec::<Received>::new()));
        let behaviour = Arc::new(Mutex::new(StubBehaviour::default()));
        let seen_ids = Arc::new(Mutex::new(HashMap::<String, i64>::new()));
        let state = (received.clone(), behaviour.clone(), fixture, token.to_string(), seen_ids);
        async fn handle(
            State((received, behaviour, fixture, token, seen)): State<StubState>,
            req: Request,
        ) -> axum::response::Response {
            let path = req.uri().path().to_string();
            let auth = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .trim_start_matches("Bearer ")
                .to_string();
            let bytes = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let err = |status: u16, code: &str, msg: &str| {
                (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    axum::Json(json!({"error": {"code": code, "message": msg}})),
                )
                    .into_response()
            };
            let forced = {
                let mut b = behaviour.lock().unwrap_or_else(|e| e.into_inner());
                if b.forced.is_empty() { None } else { Some(b.forced.remove(0)) }
            };
            received.lock().unwrap_or_else(|e| e.into_inner()).push(Received {
                path: path.clone(),
                token: auth.clone(),
                body: body.clone(),
            });
            if let Some(status) = forced {
                return err(status, "forced", "answer forced by the test");
            }
            if auth != token {
                return err(401, "unauthorized", "bad command token");
            }
            let Some(command_id) = body["command_id"].as_str().map(str::to_string) else {
                return err(400, "invalid", "command_id is required");
            };
            if let Some(p) = seen.lock().unwrap_or_else(|e| e.into_inner()).get(&command_id) {
                return axum::Json(json!({"position": p, "duplicate": true})).into_response();
            }
            let mut slot = fixture.lock().await;
            let position = match slot.as_mut() {
                Some(f) => match f.apply_command(&path, &body, crate::now_ms()).await {
                    Ok(Some(p)) => p,
                    Ok(None) => return err(404, "not_found", "no such anomaly or machine"),
                    Err(e) => return err(503, "unavailable", &e.to_string()),
                },
                None => 1,
            };
            seen.lock().unwrap_or_else(|e| e.into_inner()).insert(command_id, position);
            axum::Json(json!({"position": position, "duplicate": false})).into_response()
        }
        let app = axum::Router::new().fallback(axum::routing::post(handle)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(CommandStub { addr, token: token.to_string(), received, behaviour })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Answers the next requests with these statuses instead of applying them.
    pub fn force(&self, statuses: &[u16]) {
        self.behaviour.lock().unwrap_or_else(|e| e.into_inner()).forced.extend_from_slice(statuses);
    }
}
