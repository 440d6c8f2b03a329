//! Scale-out with Citus: how the cloud's tables distribute, and doing it.
//!
//! Every table that grows with the plants' history is distributed by plant (`plant`, or
//! `origin` for the log's events and telemetry), so one plant's rows live on one worker
//! and a plant's queries and writes go to one shard; the small tables every query joins
//! (layouts, coordination rows of the log) are reference tables, copied to every worker.
//! The schema keeps Citus's rules (a test checks them on plain PostgreSQL): the
//! distribution column is in every primary key and unique index, and no foreign key
//! joins two distributed tables.
//!
//! When the server has the `citus` extension, [`distribute`] runs
//! `create_distributed_table` / `create_reference_table` for every table not distributed
//! yet (idempotent); on plain PostgreSQL it does nothing and says so.

use anyhow::{Context, Result};
use eventlog::Database;

/// How a table is placed on a Citus cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Sharded by this column (the plant).
    Distributed(&'static str),
    /// Copied to every worker.
    Reference,
}

/// Every table of the cloud's database and its placement. A table missing here is a
/// mistake the catalog test reports.
pub const TABLES: &[(&str, Placement)] = &[
    ("eventlog.events", Placement::Distributed("origin")),
    ("eventlog.telemetry", Placement::Distributed("origin")),
    ("eventlog.head", Placement::Reference),
    ("eventlog.streams", Placement::Reference),
    ("eventlog.idempotency_keys", Placement::Reference),
    ("eventlog.checkpoints", Placement::Reference),
    ("eventlog.snapshots", Placement::Reference),
    ("eventlog.origins", Placement::Reference),
    ("eventlog.retiring_days", Placement::Reference),
    ("access.credentials", Placement::Reference),
    ("cloud.projections", Placement::Reference),
    ("cloud.plants", Placement::Reference),
    ("cloud.lines", Placement::Reference),
    ("cloud.machines", Placement::Reference),
    ("cloud.sensors", Placement::Reference),
    ("cloud.groups", Placement::Reference),
    ("cloud.models", Placement::Reference),
    ("cloud.kpi_hour", Placement::Distributed("plant")),
    ("cloud.kpi_day", Placement::Distributed("plant")),
    ("cloud.plant_status", Placement::Distributed("plant")),
    ("cloud.sensor_hour", Placement::Distributed("plant")),
    ("cloud.sensor_day", Placement::Distributed("plant")),
    ("cloud.sensor_minute", Placement::Distributed("plant")),
    ("cloud.anomalies", Placement::Distributed("plant")),
    ("cloud.maintenance", Placement::Distributed("plant")),
    ("cloud.predictions", Placement::Distributed("plant")),
    ("cloud.maintenance_log", Placement::Distributed("plant")),
];

/// What [`distribute`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Distribution {
    /// The server has no `citus` extension: plain PostgreSQL.
    NotCitus,
    /// Citus is there; these tables were distributed or made reference tables now.
    Distributed(Vec<String>),
}

/// Distributes the cloud's tables when the database has Citus (its extension created).
pub async fn distribute(db: &Database) -> Result<Distribution> {
    let client = db.client().await?;
    let has_citus: bool =
        client.query_one("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')", &[]).await?.get(0);
    if !has_citus {
        return Ok(Distribution::NotCitus);
    }
    let mut done = Vec::new();
    for (table, placement) in TABLES {
        let already: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = $1::text::regclass)",
                &[table],
            )
            .await?
            .get(0);
        if already {
            continue;
        }
        match placement {
            Placement::Distributed(column) => {
                client
                    .execute("SELECT create_distributed_table($1::text::regclass, $2)", &[table, column])
                    .await
                    .with_context(|| format!("distributing {table} by {column}"))?;
            }
            Placement::Reference => {
                client
                    .execute("SELECT create_reference_table($1::text::regclass)", &[table])
                    .await
                    .with_context(|| format!("making {table} a reference table"))?;
            }
        }
        done.push((*table).to_owned());
    }
    Ok(Distribution::Distributed(done))
}
