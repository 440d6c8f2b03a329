//! The managers' view's SQLite file: every answer of the cloud the view has shown (plants,
//! lines, machines, KPI rows, machine trends), so the view is explorable offline; and
//! snapshot files, the same tables cut to a scope and range in a file of their own, which
//! open read-only on any workstation. A snapshot of a newer format or a damaged file is
//! refused with a sentence that says so.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::api::{By, KpiRow, LineInfo, MachineInfo, PlantInfo, Trend};
use crate::range::{Bucket, Range};

/// The file format this app writes and reads (`PRAGMA user_version`).
pub const FORMAT_VERSION: i32 = 1;

#[derive(Debug, Error)]
pub enum CacheError {
    #[error("cache database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("a stored {what} could not be read: {message}")]
    Row { what: &'static str, message: String },
    #[error("{0} does not exist")]
    Missing(PathBuf),
    #[error(
        "{path} was made by a newer version of Floorwatch (file format {found}, this app reads up to {FORMAT_VERSION}): update the app to open it"
    )]
    Newer { path: PathBuf, found: i32 },
    #[error("{path} is damaged or is not a Floorwatch snapshot ({reason})")]
    Damaged { path: PathBuf, reason: String },
    #[error("writing the snapshot {path}: {message}")]
    Write { path: PathBuf, message: String },
}

/// What a file is: the app's own cache, or a snapshot made at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    Cache,
    Snapshot { made_at_ms: i64, source: String, scope: String },
}

pub struct Cache {
    conn: Connection,
    origin: Origin,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("origin", &self.origin).finish_non_exhaustive()
    }
}

fn encode<T: Serialize>(v: &T) -> Result<String, CacheError> {
    serde_json::to_string(v).map_err(|e| CacheError::Row { what: "row", message: e.to_string() })
}

fn decode<T: DeserializeOwned>(what: &'static str, body: &str) -> Result<T, CacheError> {
    serde_json::from_str(body).map_err(|e| CacheError::Row { what, message: e.to_string() })
}

const DOC_TABLES: [&str; 3] = ["plants", "lines", "machines"];

impl Cache {
    fn init(conn: Connection, origin: Origin) -> Result<Cache, CacheError> {
        conn.execute_batch(include_str!("../sql/schema.sql"))?;
        conn.pragma_update(None, "user_version", FORMAT_VERSION)?;
        Ok(Cache { conn, origin })
    }

    /// Opens (or creates) the app's cache. A cache of another format is started afresh by the caller.
    pub fn open(path: &Path) -> Result<Cache, CacheError> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > FORMAT_VERSION {
            return Err(CacheError::Newer { path: path.into(), found: version });
        }
        Cache::init(conn, Origin::Cache)
    }

    pub fn open_in_memory() -> Result<Cache, CacheError> {
        Cache::init(Connection::open_in_memory()?, Origin::Cache)
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    pub fn is_snapshot(&self) -> bool {
        matches!(self.origin, Origin::Snapshot { .. })
    }

    /// Forgets everything (another cloud was configured).
    pub fn clear(&mut self) -> Result<(), CacheError> {
        self.conn.execute_batch("DELETE FROM meta; DELETE FROM plants; DELETE FROM lines; DELETE FROM machines; DELETE FROM kpi; DELETE FROM trend;")?;
        Ok(())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, CacheError> {
        Ok(self.conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), CacheError> {
        self.conn.execute(include_str!("../sql/set_meta.sql"), params![key, value])?;
        Ok(())
    }

    fn put_doc<T: Serialize>(&self, table: &str, plant: u16, body: &T) -> Result<(), CacheError> {
        let sql = include_str!("../sql/upsert_doc.sql").replace("{table}", table);
        self.conn.execute(&sql, params![plant, encode(body)?])?;
        Ok(())
    }

    fn docs<T: DeserializeOwned>(&self, table: &'static str, plant: Option<u16>) -> Result<Vec<T>, CacheError> {
        let mut stmt =
            self.conn.prepare(&format!("SELECT body FROM {table} WHERE ?1 IS NULL OR plant = ?1 ORDER BY plant"))?;
        let bodies = stmt.query_map([plant], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
        bodies.iter().map(|b| decode(table, b)).collect()
    }

    pub fn store_plants(&mut self, plants: &[PlantInfo]) -> Result<(), CacheError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM plants", [])?;
        for p in plants {
            tx.execute(
                &include_str!("../sql/upsert_doc.sql").replace("{table}", "plants"),
                params![p.plant, encode(p)?],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn plants(&self) -> Result<Vec<PlantInfo>, CacheError> {
        self.docs("plants", None)
    }

    pub fn store_lines(&self, plant: u16, lines: &Vec<LineInfo>) -> Result<(), CacheError> {
        self.put_doc("lines", plant, lines)
    }

    pub fn lines(&self, plant: u16) -> Result<Vec<LineInfo>, CacheError> {
        Ok(self.docs::<Vec<LineInfo>>("lines", Some(plant))?.into_iter().next().unwrap_or_default())
    }

    pub fn store_machines(&self, plant: u16, machines: &Vec<MachineInfo>) -> Result<(), CacheError> {
        self.put_doc("machines", plant, machines)
    }

    pub fn machines(&self, plant: u16) -> Result<Vec<MachineInfo>, CacheError> {
        Ok(self.docs::<Vec<MachineInfo>>("machines", Some(plant))?.into_iter().next().unwrap_or_default())
    }

    pub fn store_kpis(&mut self, bucket: Bucket, by: By, rows: &[KpiRow]) -> Result<(), CacheError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(include_str!("../sql/upsert_kpi.sql"))?;
            for r in rows {
                stmt.execute(params![
                    bucket.as_str(),
                    by.as_str(),
                    r.plant,
                    r.group(),
                    r.bucket_start.timestamp_millis(),
                    encode(r)?
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The stored KPI rows of `plants` (empty: all) in the range's buckets.
    pub fn kpis(&self, range: &Range, by: By, plants: &[u16]) -> Result<Vec<KpiRow>, CacheError> {
        let filter = (!plants.is_empty()).then(|| serde_json::to_string(plants).unwrap_or_default());
        let mut stmt = self.conn.prepare_cached(include_str!("../sql/kpi_range.sql"))?;
        let bodies = stmt
            .query_map(params![range.bucket.as_str(), by.as_str(), range.from_ms, range.to_ms, filter], |r| {
                r.get::<_, String>(0)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        bodies.iter().map(|b| decode("KPI row", b)).collect()
    }

    pub fn store_trend(&self, trend: &Trend, from_ms: i64, to_ms: i64) -> Result<(), CacheError> {
        self.conn.execute(
            include_str!("../sql/upsert_trend.sql"),
            params![trend.machine_id, trend.plant, from_ms, to_ms, encode(trend)?],
        )?;
        Ok(())
    }

    pub fn trend(&self, machine: &str, from_ms: i64, to_ms: i64) -> Result<Option<Trend>, CacheError> {
        let body: Option<String> = self
            .conn
            .query_row(include_str!("../sql/trend_of.sql"), params![machine, from_ms, to_ms], |r| r.get(0))
            .optional()?;
        body.map(|b| decode("machine trend", &b)).transpose()
    }

    /// Writes a snapshot of `plants` (empty: all) over `range` and the period before it
    /// (for comparisons) to `path`: a self-contained file of this format, replaced whole.
    /// Returns the number of machines whose trend it holds.
    pub fn save_snapshot(
        &self,
        path: &Path,
        plants: &[u16],
        range: &Range,
        made_at_ms: i64,
        source: &str,
        scope: &str,
    ) -> Result<usize, CacheError> {
        let werr = |message: String| CacheError::Write { path: path.into(), message };
        let tmp = path.with_extension("snapshot-tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut snap = Cache::init(Connection::open(&tmp)?, Origin::Cache)?;
        let keep = |p: u16| plants.is_empty() || plants.contains(&p);
        let wide = Range { from_ms: range.previous().from_ms, ..*range };
        let trends;
        {
            let all = self.plants()?;
            snap.store_plants(&all.into_iter().filter(|p| keep(p.plant)).collect::<Vec<_>>())?;
            for table in ["lines", "machines"] {
                let mut stmt = self.conn.prepare(&format!("SELECT plant, body FROM {table}"))?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, u16>(0)?, r.get::<_, String>(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                for (plant, body) in rows.into_iter().filter(|(p, _)| keep(*p)) {
                    snap.conn.execute(
                        &include_str!("../sql/upsert_doc.sql").replace("{table}", table),
                        params![plant, body],
                    )?;
                }
            }
            for bucket in [Bucket::Hour, Bucket::Day] {
                for by in [By::Plant, By::Line, By::MachineType] {
                    let r = Range { bucket, ..wide };
                    let rows = self.kpis(&r, by, plants)?;
                    snap.store_kpis(bucket, by, &rows)?;
                }
            }
            let mut stmt = self.conn.prepare(
                "SELECT machine_id, plant, from_ms, to_ms, body FROM trend WHERE from_ms < ?2 AND to_ms > ?1",
            )?;
            let rows = stmt
                .query_map(params![wide.from_ms, wide.to_ms], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, u16>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut machines = std::collections::BTreeSet::new();
            for (m, plant, f, t, body) in rows.into_iter().filter(|r| keep(r.1)) {
                snap.conn.execute(include_str!("../sql/upsert_trend.sql"), params![m, plant, f, t, body])?;
                machines.insert(m);
            }
            trends = machines.len();
            snap.set_meta("kind", "snapshot")?;
            snap.set_meta("made_at_ms", &made_at_ms.to_string())?;
            snap.set_meta("source", source)?;
            snap.set_meta("scope", scope)?;
            snap.set_meta("range", &encode(range)?)?;
        }
        snap.conn.execute_batch("VACUUM")?;
        drop(snap);
        std::fs::rename(&tmp, path).map_err(|e| werr(e.to_string()))?;
        Ok(trends)
    }

    /// Opens a snapshot file read-only, checking what it is first.
    pub fn open_snapshot(path: &Path) -> Result<(Cache, Range), CacheError> {
        if !path.is_file() {
            return Err(CacheError::Missing(path.into()));
        }
        let damaged = |reason: String| CacheError::Damaged { path: path.into(), reason };
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(|e| damaged(e.to_string()))?;
        let version: i32 =
            conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| damaged(e.to_string()))?;
        if version > FORMAT_VERSION {
            return Err(CacheError::Newer { path: path.into(), found: version });
        }
        let check: String =
            conn.pragma_query_value(None, "quick_check", |r| r.get(0)).map_err(|e| damaged(e.to_string()))?;
        if check != "ok" {
            return Err(damaged(check));
        }
        let cache = Cache { conn, origin: Origin::Cache };
        let meta = |k: &str| cache.meta(k).map_err(|e| damaged(e.to_string()));
        if version < 1 || meta("kind")?.as_deref() != Some("snapshot") {
            return Err(damaged("it is not marked as a snapshot".into()));
        }
        let made_at_ms =
            meta("made_at_ms")?.and_then(|v| v.parse().ok()).ok_or_else(|| damaged("no time made".into()))?;
        let range: Range =
            meta("range")?.and_then(|v| serde_json::from_str(&v).ok()).ok_or_else(|| damaged("no range".into()))?;
        // Every table must be there and readable.
        for table in DOC_TABLES.iter().chain(&["kpi", "trend"]) {
            cache
                .conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0))
                .map_err(|e| damaged(e.to_string()))?;
        }
        let origin = Origin::Snapshot {
            made_at_ms,
            source: meta("source")?.unwrap_or_default(),
            scope: meta("scope")?.unwrap_or_default(),
        };
        Ok((Cache { origin, ..cache }, range))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpi::tests::row;
    use crate::range::HOUR_MS;

    const T0: i64 = 1_772_366_400_000;

    fn filled() -> Cache {
        let mut c = Cache::open_in_memory().unwrap();
        let rows: Vec<KpiRow> =
            (1..=3).flat_map(|p| (0..4).map(move |h| row(p, T0 + h * HOUR_MS, 100.0, 80.0, 10, 9, 70.0))).collect();
        c.store_kpis(Bucket::Hour, By::Plant, &rows).unwrap();
        c
    }

    #[test]
    fn kpi_rows_come_back_by_range_and_plant() {
        let c = filled();
        let r = Range { from_ms: T0 + HOUR_MS, to_ms: T0 + 3 * HOUR_MS, bucket: Bucket::Hour };
        assert_eq!(c.kpis(&r, By::Plant, &[]).unwrap().len(), 6);
        let only2 = c.kpis(&r, By::Plant, &[2]).unwrap();
        assert_eq!(only2.len(), 2);
        assert!(only2.iter().all(|k| k.plant == 2));
        assert!(c.kpis(&r, By::Line, &[]).unwrap().is_empty());
    }

    #[test]
    fn a_snapshot_holds_its_scope_and_opens_marked_with_its_time() {
        let c = filled();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("week.fwsnap");
        let r = Range { from_ms: T0 + 2 * HOUR_MS, to_ms: T0 + 4 * HOUR_MS, bucket: Bucket::Hour };
        c.save_snapshot(&path, &[1, 3], &r, 42, "http://cloud", "P1, P3").unwrap();
        let (s, range) = Cache::open_snapshot(&path).unwrap();
        assert_eq!(range, r);
        assert!(matches!(s.origin(), Origin::Snapshot { made_at_ms: 42, .. }));
        // The period before is kept too, for comparisons; plant 2 is not in the scope.
        let all = Range { from_ms: T0, to_ms: T0 + 4 * HOUR_MS, bucket: Bucket::Hour };
        let rows = s.kpis(&all, By::Plant, &[]).unwrap();
        assert_eq!(rows.len(), 8);
        assert!(rows.iter().all(|k| k.plant != 2));
        assert!(s.set_meta("x", "y").is_err(), "a snapshot opens read-only");
    }

    #[test]
    fn newer_damaged_and_foreign_files_are_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.fwsnap");
        std::fs::write(&garbage, b"\x00\xffnot sqlite at all".repeat(100)).unwrap();
        let e = Cache::open_snapshot(&garbage).unwrap_err();
        assert!(matches!(e, CacheError::Damaged { .. }), "{e}");
        assert!(e.to_string().contains("damaged"));

        let c = filled();
        let good = dir.path().join("good.fwsnap");
        let r = Range { from_ms: T0, to_ms: T0 + 4 * HOUR_MS, bucket: Bucket::Hour };
        c.save_snapshot(&good, &[], &r, 1, "", "").unwrap();
        let newer = dir.path().join("newer.fwsnap");
        std::fs::copy(&good, &newer).unwrap();
        Connection::open(&newer).unwrap().pragma_update(None, "user_version", FORMAT_VERSION + 1).unwrap();
        let e = Cache::open_snapshot(&newer).unwrap_err();
        assert!(matches!(e, CacheError::Newer { .. }) && e.to_string().contains("newer version"), "{e}");

        // A file cut short in the middle: damaged, not a crash.
        let bytes = std::fs::read(&good).unwrap();
        let cut = dir.path().join("cut.fwsnap");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        assert!(Cache::open_snapshot(&cut).is_err());

        // The app's own cache is not a snapshot.
        let cache_path = dir.path().join("cache.sqlite");
        drop(Cache::open(&cache_path).unwrap());
        assert!(Cache::open_snapshot(&cache_path).unwrap_err().to_string().contains("not marked as a snapshot"));
        assert!(matches!(Cache::open_snapshot(&dir.path().join("none")), Err(CacheError::Missing(_))));
    }
}
