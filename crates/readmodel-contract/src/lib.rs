//! The plant's read models as every reader sees them: the rows, the status values they
//! carry, and the queries for "what changed since position N".
//!
//! The projections (`readmodels`) write these tables; the desktop app, tools and
//! benchmarks read them through this crate only, as the read-only role
//! ([`READER_ROLE`]). Every row carries the log position of the event that last changed
//! it, so one query per table serves live updates (after a NOTIFY on [`CHANNEL`]) and
//! catching up after being offline.
//!
//! Rules: no writes, no log tables, no projection logic; times cross this boundary as
//! milliseconds since the Unix epoch. Every statement lives in `sql/`.

pub mod forwarding;
pub mod history;
pub mod rows;
pub mod since;
pub mod status;
pub mod timetravel;

pub use forwarding::{ForwardingLag, forwarding_lag};
pub use rows::*;
pub use since::{
    CatchUp, Cursors, Fetched, PAGE_ROWS, Progress, ReadError, ReadModel, catch_up, model_track_records, progress,
    read_since,
};
pub use status::{MachineCondition, OrderState, SensorStatus, TaskState, task_label};

/// NOTIFY channel of read-model changes; the payload is the position applied.
pub const CHANNEL: &str = "readmodel";

/// The role readers log in as: `SELECT` on `readmodel.*` and `LISTEN`, nothing else.
pub const READER_ROLE: &str = "floorwatch_reader";
