//! The factory simulator: sensor readings, faults, wear and maintenance, with ground truth.
//!
//! `seed + layout + config + simulated time → readings and events`, exactly. The
//! generator reads no clock, opens no socket and starts no thread: the caller creates a
//! [`Factory`] and calls [`Factory::step`] (or [`Factory::step_into`], which reuses
//! buffers) once per sampling interval. Pacing to the wall clock, sending batches over
//! HTTP and reporting progress belong to the caller.
//!
//! ```
//! use layout::{Layout, Scale};
//! use simulator::{Factory, SimConfig};
//!
//! let scale = Scale { plants: Some(1), sensors_per_plant: Some(200), ..Scale::default() };
//! let layout = Layout::default_with(&scale).unwrap();
//! let mut factory = Factory::new(&layout, &SimConfig::default(), 42, 1_767_225_600_000).unwrap();
//! let step = factory.step();
//! assert_eq!(step.reading_count(), 200);
//! for batch in &step.batches {
//!     // What gateway `batch.gateway` sends: the batch in the wire format.
//!     let body = telemetry::encode(&batch.readings).unwrap();
//!     assert_eq!(telemetry::decode(&body).unwrap(), batch.readings);
//! }
//! ```
//!
//! # Time
//!
//! Step `k` has timestamp `start_ms + k × step_ms` (if `step_ms` never changes). With
//! `step_ms = 1000` every sensor reports once a simulated second, as real gateways do.
//! A backfill uses a coarser interval (e.g. 60,000: 30 days of a 10,000-sensor plant is
//! 432 million readings instead of 26 billion); load, drift, wear, maintenance and
//! failures evolve in simulated time, so they are the same processes at any interval.
//! [`Factory::set_step_ms`] switches interval mid-run, e.g. from backfill to real time.
//!
//! # Signals
//!
//! A healthy sensor reads `level + drift + daily + load_gain × (load − 0.75) +
//! wear_gain × wear² + noise`, with each term sized from its kind's spec in the layout
//! and varied per sensor. `daily` is a 24-hour sine (each plant in its own time zone);
//! `load` is its machine's load, which steps to a new target every 20 minutes or so and
//! follows it with a one-minute lag, moving all the machine's sensors together; `drift`
//! wanders over days; `wear` grows from 0 after maintenance to about 1 at failure, faster
//! under load, at a rate that differs from machine to machine. Values are rounded to f32,
//! so a batch stores each in 4 bytes.
//!
//! # Faults, failures, maintenance
//!
//! Faults arrive at random (a Poisson process per kind, rates in [`FaultConfig`]) and hit
//! a random sensor without a fault, or 2–5 sensors of one machine; see [`FaultShape`] for
//! what each kind does to the readings. A machine fails when its wear reaches its hidden
//! limit (about 1) and is repaired for 8–36 hours; scheduled machines are serviced (2–6
//! hours) at 80% of their type's life after their last maintenance, so machines that
//! wear fast fail first and the rest are serviced; a quarter of the machines are never
//! scheduled and always run to failure. A stopped machine's sensors still report, at
//! idle values. All of this is reported as [`FactoryEvent`]s in the step it happens.
//!
//! # Determinism
//!
//! Every plant, machine and sensor draws from its own random stream derived from
//! `(seed, plant number, index)`. The same layout, config, seed, start and steps give
//! byte-identical readings and ground truth on the same platform; a plant's output does
//! not depend on which other plants run or on which thread; a sensor's noise does not
//! depend on faults elsewhere, so a run with faults differs from the same run without
//! them only inside the fault windows of the ground truth. [`PlantSim::for_machines`]
//! simulates a few machines alone with exactly the values of the full run.
//!
//! # Production
//!
//! [`ProductionSim`] follows a plant's simulation and counts what its machines make:
//! each machine has a planned schedule, an ideal cycle time and part counters, and
//! rejects grow with wear and during faults. Every 15 simulated minutes it reports each
//! machine's planned and running time, parts and rejects, as a machine controller
//! would, so OEE can be computed from what plants send. It has random streams of its
//! own: the readings and ground truth of a run are the same with or without it.
//!
//! # Files
//!
//! [`OutputDir`] records a run in a directory (the `output` module is the only code that
//! touches files; everything else works on `Read`/`Write`):
//!
//! * `manifest.json` — format version, seed, start, step, configuration, plants with
//!   their gateways and counts, and `complete: true` once finished.
//! * `readings-P1.bin` (one per plant) — a header and length-prefixed records:
//!
//!   ```text
//!   8 bytes  header: "FWREADS" and the format version (1)
//!   then per record (one gateway batch), little-endian:
//!   u32      length of the rest of the record (11 ..= 16 MiB)
//!   u8       length G of the gateway id (1 ..= 255)
//!   G bytes  gateway id, UTF-8 (`P1-L03`)
//!   u64      sequence number (the step's timestamp in ms)
//!   rest     the batch, exactly the bytes of `telemetry::encode`
//!   ```
//!
//!   [`ReadingsReader`] replays such a file; an empty batch (all of a line's sensors in
//!   a dropout) is not written.
//! * `ground-truth.jsonl` — one [`FactoryEvent`] per line as a JSON object, in the order
//!   the events happened (step by step, plant by plant), written by
//!   [`GroundTruthWriter`] and read by [`read_ground_truth`]. The `type` field says what
//!   the line is:
//!
//!   ```text
//!   {"type":"fault_started","plant":"P1","fault":17,"machine":"P1-L03-M042",
//!    "sensors":[{"id":1002345,"name":"P1-L03-M042-TEMP1"}],
//!    "start_ms":1767225600000,"end_ms":1767226500000,"kind":"level_shift","delta":4.25}
//!   {"type":"fault_ended","plant":"P1","fault":17,"ts_ms":1767226500000}
//!   {"type":"machine_failed","plant":"P1","machine":"P1-L01-M007","ts_ms":…,"wear":1.02}
//!   {"type":"maintenance_started","plant":"P1","machine":"P1-L01-M007","ts_ms":…,
//!    "kind":"corrective","wear":1.02,"until_ms":…}
//!   {"type":"maintenance_completed","plant":"P1","machine":"P1-L01-M007","ts_ms":…,
//!    "kind":"corrective","wear":0.01}
//!   ```
//!
//!   A fault affects its sensors' readings with `start_ms <= ts_ms < end_ms`. Its `kind`
//!   and parameters: `spike` and `level_shift` (`delta`, added), `drift`
//!   (`delta_at_end`, added in proportion to the time elapsed), `stuck` (`value`,
//!   repeated exactly), `noise_burst` (`noise_sd`, replacing the sensor's noise),
//!   `dropout` (no readings), `machine` (`deltas`, one per listed sensor, ramped in over
//!   `ramp_ms`, then held). Maintenance `kind` is `preventive` or `corrective` (the repair
//!   after a `machine_failed` at the same instant).
//!
//! [`export_sensor_csv`] writes one sensor's series as `timestamp,value` rows (timestamp
//! in ms since the Unix epoch) and returns the faults that touched it.

mod config;
mod event;
mod factory;
mod fault;
mod machine;
mod output;
mod plant;
mod production;
mod record;
mod seed;

pub use config::{
    ConfigError, FaultConfig, LoadConfig, MAX_FAULT_RATE_PER_HOUR, MAX_STEP_MS, MaintenanceConfig, SimConfig,
    WearConfig,
};
pub use event::{FactoryEvent, FaultKind, FaultRecord, FaultShape, MaintenanceKind, SensorRef};
pub use factory::{Factory, GatewayBatch, Step};
pub use machine::{MachineState, MachineStatus};
pub use output::{
    GROUND_TRUTH_FILE, MANIFEST_FILE, Manifest, ManifestPlant, OUTPUT_FORMAT_VERSION, OutputDir, OutputError,
    open_ground_truth, open_readings, read_manifest, readings_file_name, write_run,
};
pub use plant::{PlantSim, SimError, TYPICAL_LOAD};
pub use production::{ProductionConfig, ProductionError, ProductionReport, ProductionSim};
pub use record::{
    ExportError, GroundTruthError, GroundTruthReader, GroundTruthWriter, MAX_GATEWAY_BYTES, MAX_GROUND_TRUTH_LINE,
    MAX_RECORD_BYTES, READINGS_FORMAT_VERSION, READINGS_MAGIC, ReadingsReader, ReadingsWriter, RecordError,
    RecordedBatch, ReplayError, SensorSeries, export_sensor_csv, read_ground_truth,
};
