//! The plant node's HTTP server: the router served by hyper with limits a hostile or
//! broken client cannot get round (axum's own `serve` sets none of them):
//!
//! * at most `max_connections` connections at once; beyond that new ones wait in the
//!   listen backlog until one closes, so a flood of connections costs a bounded number of
//!   tasks and sockets;
//! * a client must send a request's headers within `header_timeout_ms` (a connection that
//!   sends nothing, or dribbles its headers, is closed; so is an idle keep-alive one);
//! * a whole request, its body included, is answered within `request_timeout_ms`, with
//!   `408` if the client is too slow to send it;
//! * a graceful stop: no new connections, requests in flight are finished.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::api::ApiError;

/// Limits of the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub max_connections: usize,
    pub header_timeout_ms: u64,
    pub request_timeout_ms: u64,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits { max_connections: 256, header_timeout_ms: 10_000, request_timeout_ms: 30_000 }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes; then stops
/// accepting and waits for the requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let timeout = Duration::from_millis(limits.request_timeout_ms.max(1));
    let app = app.layer(from_fn_with_state(timeout, within));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(Duration::from_millis(limits.header_timeout_ms.max(1)));
    tokio::pin!(shutdown);
    loop {
        // A free slot first: past the limit, connections wait in the kernel's backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.map_err(std::io::Error::other)?,
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, a connection reset before it was taken: wait a
                    // moment rather than spin, and go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Answers `408` when a request (reading its body included) takes longer than `timeout`.
async fn within(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request was not received and answered within {} ms", timeout.as_millis()),
        )
        .into_response(),
    }
}
