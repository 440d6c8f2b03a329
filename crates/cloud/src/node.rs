//! The cloud node: migrations, Citus distribution, the projections, the API and
//! retention, run together and stopped cleanly.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result};
use eventlog::Database;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, ApiState};
use crate::citus::{self, Distribution};
use crate::{CHANNEL, CloudConfig, projections};

/// Prepares the cloud's database: migrations, then distribution when Citus is there, and
/// the projections' checkpoints, which hold retention back until they have read the log.
pub async fn prepare(db: &Database, config: &CloudConfig) -> Result<()> {
    crate::migrate(db).await?;
    if config.distribute_with_citus {
        match citus::distribute(db).await? {
            Distribution::NotCitus => {
                tracing::info!("plain PostgreSQL (no citus extension): tables are not distributed")
            }
            Distribution::Distributed(tables) if tables.is_empty() => {
                tracing::info!("Citus: every table is already distributed by plant or a reference table")
            }
            Distribution::Distributed(tables) => {
                tracing::info!(tables = ?tables, "Citus: distributed by plant / made reference tables")
            }
        }
    }
    eventlog::prepare_days_ahead(db, chrono::Utc::now()).await?;
    projections::hold_retention(db).await?;
    Ok(())
}

/// Runs the cloud node on `listener` until `shutdown`; `on_start` gets the address once
/// it listens.
pub async fn run(
    db: Database,
    config: CloudConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    prepare(&db, &config).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let (changes_tx, changes_rx) = watch::channel(0i64);
    let listen = tokio::spawn({
        let db = db.clone();
        let stop = stopped(stop_rx.clone());
        async move { follow_changes(db, changes_tx, stop).await }
    });
    let projection_task = tokio::spawn({
        let db = db.clone();
        let stop = stopped(stop_rx.clone());
        let (batch, grace) = (projections::BatchLimits::from(&config), config.history_grace_ms);
        async move { projections::run(&db, batch, grace, stop).await }
    });
    let retention = tokio::spawn({
        let db = db.clone();
        let stop = stopped(stop_rx.clone());
        let config = config.clone();
        async move { retain(db, config, stop).await }
    });
    let (closing_tx, closing_rx) = watch::channel(false);
    let (app, _) = api::router(ApiState::with_closing(db.clone(), config, changes_rx, closing_rx));
    // Live-update streams never end by themselves: end them first, or the graceful
    // shutdown would wait for their clients for ever.
    let shutdown = async move {
        shutdown.await;
        let _ = closing_tx.send(true);
    };
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await.context("serving the cloud API");
    let _ = stop_tx.send(true);
    projection_task.await.context("projections task")??;
    retention.await.context("retention task")?;
    listen.await.context("change listener task")?;
    served
}

/// Passes the read models' NOTIFY positions on to the live-update streams; reconnects
/// with back-off when the LISTEN connection is lost.
async fn follow_changes(db: Database, tx: watch::Sender<i64>, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut backoff = Duration::from_millis(200);
    loop {
        let listening = async {
            let mut listener = db.listen(&[CHANNEL]).await?;
            while let Some(n) = listener.recv().await {
                if let Ok(p) = n.payload.parse::<i64>() {
                    tx.send_if_modified(|current| {
                        let newer = p > *current;
                        *current = (*current).max(p);
                        newer
                    });
                }
            }
            anyhow::Ok(())
        };
        tokio::select! {
            () = &mut stop => return,
            r = listening => if let Err(e) = r { tracing::warn!(error = format!("{e:#}"), "live-update listener lost; reconnecting") },
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Expires raw telemetry of the cloud's log and old minute aggregates once an hour.
async fn retain(db: Database, config: CloudConfig, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        let now = chrono::Utc::now();
        if let Err(e) = eventlog::prepare_days_ahead(&db, now).await {
            tracing::warn!(error = format!("{e:#}"), "could not create telemetry partitions ahead");
        }
        let cutoff = now - chrono::Duration::days(i64::from(config.telemetry_retention_days));
        match eventlog::expire_telemetry(&db, cutoff).await {
            Ok(r) if !r.dropped.is_empty() => {
                tracing::info!(dropped = ?r.dropped, "expired telemetry in the cloud's log")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "cloud telemetry retention failed"),
        }
        let minute_cutoff = now - chrono::Duration::days(i64::from(config.minute_retention_days));
        if let Err(e) = projections::expire_minutes(&db, minute_cutoff).await {
            tracing::warn!(error = format!("{e:#}"), "minute-aggregate retention failed");
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}
