//! The cloud node against real PostgreSQL and real HTTP: store-and-forward, the read
//! models and their rebuild, the query API, its credentials and its live updates. One
//! test binary, so the suite links once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "cloud/support.rs"]
mod support;

#[path = "cloud/forwarding.rs"]
mod forwarding;

#[path = "cloud/projections.rs"]
mod projections;

#[path = "cloud/api.rs"]
mod api;

#[path = "cloud/citus.rs"]
mod citus;

#[path = "cloud/partitions.rs"]
mod partitions;

#[path = "cloud/train.rs"]
mod train;

#[path = "cloud/backfill.rs"]
mod backfill;
