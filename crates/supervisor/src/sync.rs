//! Following the plant: connect as the read-only role, LISTEN for the projections'
//! NOTIFY, catch up with one since-position query per read model after each, and keep
//! retrying with back-off when the database goes away. The cache and the screen keep
//! the last state meanwhile.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use crate::config::Connection;
use crate::link::{Backoff, Link};
use crate::{Shared, now_ms};
use readmodel_contract::{CHANNEL, PAGE_ROWS, ReadError};

/// A catch-up also runs this often without a NOTIFY: a safety net for a lost notification,
/// and the way a silently dead connection is noticed.
const SAFETY_INTERVAL: Duration = Duration::from_secs(5);
/// Notifications arriving closer together than this are served by one catch-up.
const COALESCE: Duration = Duration::from_millis(150);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) enum Event {
    Notified(i64),
    Closed(String),
}

/// Opens a connection whose notifications and end are forwarded to a channel.
pub(crate) async fn connect(url: &str) -> Result<(Client, mpsc::UnboundedReceiver<Event>), ReadError> {
    let mut config: tokio_postgres::Config = url.parse()?;
    config.connect_timeout(CONNECT_TIMEOUT).keepalives(true).keepalives_idle(Duration::from_secs(10));
    config.application_name("floorwatch-desktop");
    let (client, mut connection) = config.connect(NoTls).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        let reason = loop {
            match messages.next().await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    // A payload that is not a position still means "something changed".
                    let position = n.payload().trim().parse().unwrap_or(i64::MAX);
                    if tx.send(Event::Notified(position)).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break e.to_string(),
                None => break "the plant database closed the connection".to_string(),
            }
        };
        let _ = tx.send(Event::Closed(reason));
    });
    Ok((client, rx))
}

/// Opens a plain query connection (history for charts), driven in the background.
pub(crate) async fn connect_query(url: &str) -> Result<Client, ReadError> {
    let mut config: tokio_postgres::Config = url.parse()?;
    config.connect_timeout(CONNECT_TIMEOUT).application_name("floorwatch-desktop-history");
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Runs until `shared.stop` is set: one session after another, with back-off between.
pub(crate) async fn run(shared: Arc<Shared>) {
    let backoff = Backoff::default();
    let mut attempt: u32 = 0;
    let mut seed = now_ms() as u64 | 1;
    let mut stop = shared.stop.subscribe();
    loop {
        if *stop.borrow() {
            return;
        }
        let generation = shared.generation.load(Ordering::SeqCst);
        let connection = shared.settings().connection;
        if !connection.is_configured() {
            shared.set_link(Link::NotConfigured);
            tokio::select! {
                _ = shared.reconnect.notified() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let result = session(&shared, &connection, &mut attempt, generation).await;
        let reason = match result {
            Ok(()) => {
                attempt = 0;
                continue;
            }
            Err(e) => e,
        };
        attempt = attempt.saturating_add(1);
        // xorshift: jitter only needs to differ between clients, not be unpredictable.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let jitter = (seed % 1000) as f64 / 1000.0;
        let delay = backoff.delay_ms(attempt, jitter);
        let as_of = shared.as_of_ms();
        tracing::info!(attempt, delay_ms = delay, "plant connection: {reason}");
        shared.set_link(Link::failed(attempt, now_ms() + delay as i64, as_of, reason));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
            _ = shared.reconnect.notified() => { attempt = 0; }
            _ = stop.changed() => {}
        }
    }
}

/// One connection's life: `Ok` when asked to reconnect (settings changed or stop), `Err`
/// with a reason when the connection failed or was lost.
async fn session(shared: &Arc<Shared>, conn: &Connection, attempt: &mut u32, generation: u64) -> Result<(), String> {
    if *attempt == 0 && !shared.link().is_live() {
        shared.set_link(Link::Connecting { as_of_ms: shared.as_of_ms() });
    }
    let (client, mut events) = connect(&conn.database_url).await.map_err(|e| describe(&e))?;
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await.map_err(|e| describe(&e.into()))?;
    catch_up(shared, &client).await.map_err(|e| describe(&e))?;
    *attempt = 0;
    shared.set_link(Link::Live { since_ms: now_ms(), position: shared.synced.load(Ordering::SeqCst) });
    shared.outbox_retry_now();
    let mut stop = shared.stop.subscribe();
    loop {
        let due = tokio::select! {
            ev = events.recv() => match ev {
                Some(Event::Notified(p)) => p > shared.synced.load(Ordering::SeqCst),
                Some(Event::Closed(reason)) => return Err(reason),
                None => return Err("the plant connection ended".into()),
            },
            _ = tokio::time::sleep(SAFETY_INTERVAL) => true,
            _ = shared.reconnect.notified() => return Ok(()),
            _ = stop.changed() => return Ok(()),
        };
        if shared.generation.load(Ordering::SeqCst) != generation {
            return Ok(());
        }
        if !due {
            continue;
        }
        // Let a burst of notifications settle, then serve all of them with one catch-up.
        tokio::time::sleep(COALESCE).await;
        while let Ok(ev) = events.try_recv() {
            if let Event::Closed(reason) = ev {
                return Err(reason);
            }
        }
        catch_up(shared, &client).await.map_err(|e| describe(&e))?;
        shared.touch_live();
    }
}

/// Fetches what changed since the cursors and applies it to the cache and the screen.
pub(crate) async fn catch_up(shared: &Arc<Shared>, client: &Client) -> Result<(), ReadError> {
    let cursors = shared.cursors();
    let fetched = readmodel_contract::catch_up(client, &cursors, PAGE_ROWS).await?;
    let shared2 = shared.clone();
    let applied = tokio::task::spawn_blocking(move || shared2.apply(fetched, now_ms())).await;
    match applied {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            // The cache failing must not stop the live picture; the screen is still right.
            tracing::warn!("cache write failed: {e}");
            Ok(())
        }
        Err(e) => {
            tracing::error!("applying a catch-up panicked: {e}");
            Ok(())
        }
    }
}

fn describe(e: &ReadError) -> String {
    match e {
        ReadError::Postgres(pg) => match pg.as_db_error() {
            Some(db) => format!("{}: {}", db.severity(), db.message()),
            None => {
                let text = pg.to_string();
                let source = std::error::Error::source(pg).map(|s| s.to_string());
                match source {
                    Some(s) if !text.contains(&s) => format!("{text}: {s}"),
                    _ => text,
                }
            }
        },
        other => other.to_string(),
    }
}
