//! Floorwatch's anomaly detection: a streaming per-sensor detector with calibrated scores,
//! machine-level anomaly episodes, the offline CSV path, and an Azure-Anomaly-Detector
//! compatible batch API. Pure: no IO beyond the reader/writer handed to the CSV path, no
//! clock (time arrives with the readings), no global state.

pub mod azure;
pub mod config;
pub mod counter;
pub mod detector;
pub mod episode;
pub mod eval;
pub mod machine;
pub mod offline;
pub mod stats;
pub mod synth;
pub mod timestamp;

pub use config::{Config, ConfigError, Enabled};
pub use detector::{
    CheckpointError, Detector, Diagnostics, MAX_READING_MAGNITUDE, SEASON_BINS, Score, SensorState, StreamingDetector,
    Test, ValueError, clamp_reading,
};
pub use episode::{Episode, EpisodeConfig, EpisodeConfigError, EpisodeEvent, EpisodeTracker, SensorEvidence, Severity};
pub use eval::{BenchReport, BenchSpec, EvalReport, EvalSpec, ablation, benchmark, evaluate};
pub use machine::{MachineModel, MachineModelConfig};
pub use offline::{CsvError, Summary, detect_csv};
pub use timestamp::parse_timestamp_ms;
