//! Scale-out with Citus. On plain PostgreSQL a catalog test checks the schema keeps
//! Citus's rules; with `FLOORWATCH_CITUS_URL` (a database on a Citus coordinator where the
//! `citus` extension exists) the node distributes the tables itself and the cloud runs
//! there end to end.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;

use access::{Role, Scope};
use cloud::citus::{Placement, TABLES};

use crate::projections::{plant_story, projected};
use crate::support::*;

#[tokio::test]
async fn every_table_distributes_by_plant_or_is_a_reference_table_and_keeps_citus_rules() {
    let db = cloud_db().await;
    let client = db.client().await.unwrap();
    let placements: BTreeMap<&str, Placement> = TABLES.iter().copied().collect();
    // Every table of the cloud's schemas is placed (partitions follow their parent).
    let tables: BTreeSet<String> = client
        .query(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname IN ('eventlog', 'access', 'cloud') AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let placed: BTreeSet<String> = placements.keys().map(|t| (*t).to_owned()).collect();
    assert_eq!(tables, placed, "tables and their Citus placement");

    for (table, placement) in &placements {
        let Placement::Distributed(column) = placement else { continue };
        // The distribution column exists, and is the same type everywhere (co-location).
        let ty: String = client
            .query_one(
                "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                  WHERE a.attrelid = $1::text::regclass AND a.attname = $2 AND NOT a.attisdropped",
                &[table, column],
            )
            .await
            .unwrap_or_else(|e| panic!("{table} has no column {column}: {e}"))
            .get(0);
        assert_eq!(ty, "smallint", "{table}.{column}");
        // Every primary key and unique index holds it.
        let unique: Vec<(String, bool)> = client
            .query(
                "SELECT i.indexrelid::regclass::text,
                        EXISTS (SELECT 1 FROM unnest(i.indkey) k JOIN pg_attribute a
                                  ON a.attrelid = i.indrelid AND a.attnum = k WHERE a.attname = $2)
                   FROM pg_index i WHERE i.indrelid = $1::text::regclass AND i.indisunique",
                &[table, column],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert!(!unique.is_empty(), "{table} has a primary key");
        for (index, holds) in unique {
            assert!(holds, "unique index {index} of {table} lacks the distribution column {column}");
        }
    }
    // No foreign key joins two tables of these schemas (none to or from a distributed one).
    let fks: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
              WHERE c.contype = 'f' AND n.nspname IN ('eventlog', 'access', 'cloud')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(fks, 0);
    // On plain PostgreSQL the node says so and changes nothing.
    assert_eq!(cloud::citus::distribute(&db).await.unwrap(), cloud::citus::Distribution::NotCitus);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_citus_coordinator_the_cloud_distributes_itself_and_runs() {
    let Ok(url) = std::env::var("FLOORWATCH_CITUS_URL") else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED on_a_citus_coordinator_the_cloud_distributes_itself_and_runs: FLOORWATCH_CITUS_URL is not set \
             (see ARCHITECTURE.md, \"Scale-out with Citus\")"
        );
        return;
    };
    let db = eventlog::Database::new(&url, 16).unwrap();
    // A clean slate in the database named: the cloud's schemas are made anew.
    db.client()
        .await
        .unwrap()
        .batch_execute(
            "DROP SCHEMA IF EXISTS cloud, access, eventlog CASCADE;
             DROP TABLE IF EXISTS public.eventlog_schema_history, public.access_schema_history, public.cloud_schema_history",
        )
        .await
        .unwrap();
    cloud::node::prepare(&db, &config()).await.unwrap();
    let client = db.client().await.unwrap();
    let distributed: BTreeSet<String> = client
        .query("SELECT logicalrelid::regclass::text FROM pg_dist_partition", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (table, _) in TABLES {
        assert!(distributed.contains(*table), "{table} is not distributed or a reference table");
    }
    // The node runs there: a plant's story arrives, is projected and is answered.
    let node = CloudNode::start(&db, 0).await;
    let plant = Plant::new(1, 1).await;
    let t = token(&db, Role::Forwarder, Scope::plant(1)).await;
    let (stop, task) = forwarder(&plant, &node.url, &t);
    let t0 = now_s() - 86_400_000;
    let t0 = t0 - t0.rem_euclid(3_600_000);
    plant_story(&plant, t0, 20).await;
    wait_for("the log to arrive on Citus", Duration::from_secs(120), || async {
        cloud_copy(&db, 1).await.len() == plant_log(&plant.db).await.len()
    })
    .await;
    projected(&db).await;
    let manager = token(&db, Role::Manager, Scope::AllPlants).await;
    let kpis: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/kpis?from={}&to={}", node.url, rfc3339(at(t0)), rfc3339(at(t0 + 3_600_000))))
        .bearer_auth(manager)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kpis[0]["anomalies"]["major"], 1, "{kpis}");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    node.stop().await;
}
