//! The ingest API: gateways upload batches of readings over HTTP; valid readings are
//! appended to the plant's log as one `ReadingsRecorded` event per upload, invalid ones
//! go to the dead-letter table, and the answer says which were refused and why. Gateways
//! also relay their machines' reports: failures, and production counters per period.

mod http;
mod json;
mod machine_message;
mod production;
mod validate;
mod writer;

pub use http::{
    BINARY_CONTENT_TYPE, Clock, IngestConfig, IngestState, IngestStats, UploadOutcome, router, system_clock,
};
pub use json::{BodyError, check_json};
pub use machine_message::{MachineMessage, parse as parse_machine_message};
pub use production::{MAX_REPORTS, ProductionOutcome};
pub use validate::{Checked, Rejection, Validator};
pub use writer::{Stored, Upload, WriteError, Writer, WriterConfig, WriterLoop};
