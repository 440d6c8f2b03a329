//! Store-and-forward from a plant to the cloud.
//!
//! The forwarder is a subscriber of the plant's log (checkpoint `forwarder`): it reads
//! every event in order, never skipping one, and ships them in batches to the cloud's
//! ingest API, authenticated as this plant's forwarder. The cloud stores each event once
//! (by plant and plant position) and answers with the position it has stored through;
//! only then does the forwarder's checkpoint move, in the same transaction as the read.
//!
//! * **Resuming.** On every (re)start the forwarder asks the cloud where it stands and
//!   sends what follows: events the cloud already has are left out, and if the cloud has
//!   less than the checkpoint says (a cloud restored from a backup), the forwarder reads
//!   the missing events again and sends them first. A crash at any instant loses nothing
//!   and doubles nothing.
//! * **Outages.** While the cloud is away the forwarder retries with back-off (the plant
//!   keeps working: nothing waits for the cloud), then catches up at full speed with
//!   large batches. Its checkpoint holds the plant's telemetry retention back, so a day
//!   of readings is never dropped before it was shipped.
//! * **A slow cloud.** A read batch goes out as requests bounded in events and bytes, a
//!   few of them in flight at once (`requests_in_flight`): the next ones travel and are
//!   checked while the cloud stores one, and the cloud stores them in order. Nothing more
//!   is read from the log until the cloud has answered them all, so a slow cloud slows
//!   the forwarder down instead of piling requests up. A request that takes too long is
//!   abandoned and the batch sent again from what the cloud acknowledged (it stores each
//!   event once).
//! * **Lag.** After every batch, and after every failure, the link's state and how far
//!   behind it is (events and seconds) go to the plant's `readmodel.forwarding`.

mod client;
mod ship;
pub mod wire;

pub use client::{CloudClient, CloudError};
pub use ship::{FORWARDER, ForwarderConfig, run};
