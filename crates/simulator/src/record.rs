//! Recorded runs as byte streams: the readings file, the ground-truth lines and a sensor's CSV.
//!
//! Everything here works on `Read`/`Write`, so it is tested in memory; `output` puts
//! these streams in files.

use crate::config::SimConfig;
use crate::event::{FactoryEvent, FaultRecord};
use crate::factory::GatewayBatch;
use crate::plant::{PlantSim, SimError};
use layout::Layout;
use std::io::{self, BufRead, BufWriter, Read, Write};
use telemetry::Reading;
use thiserror::Error;

/// First 7 bytes of a readings file; the 8th is the format version.
pub const READINGS_MAGIC: &[u8; 7] = b"FWREADS";
pub const READINGS_FORMAT_VERSION: u8 = 1;
/// Upper bound on one record's body, far above the largest gateway batch (a batch holds
/// at most `telemetry::MAX_READINGS` readings of at most 13 bytes each).
pub const MAX_RECORD_BYTES: u32 = 16 << 20;
/// Gateway ids are stored with a one-byte length.
pub const MAX_GATEWAY_BYTES: usize = 255;
/// Longest ground-truth line accepted when reading (a machine fault lists ≤ 5 sensors).
pub const MAX_GROUND_TRUTH_LINE: usize = 1 << 20;

#[derive(Debug, Error)]
pub enum RecordError {
    #[error("writing readings: {0}")]
    Io(#[from] io::Error),
    #[error("gateway id must be 1 to 255 bytes, got {0}")]
    BadGateway(usize),
    #[error("record of {0} bytes exceeds the limit of {MAX_RECORD_BYTES}")]
    TooLarge(usize),
    #[error("a record needs a non-empty batch")]
    EmptyPayload,
    #[error("encoding a batch: {0}")]
    Encode(#[from] telemetry::EncodeError),
}

#[derive(Debug, Error)]
pub enum ReplayError {
    #[error("reading the readings file: {0}")]
    Io(#[from] io::Error),
    #[error("not a readings file (it does not start with \"FWREADS\")")]
    NotAReadingsFile,
    #[error("unsupported readings file version {0} (this build reads version {READINGS_FORMAT_VERSION})")]
    UnsupportedVersion(u8),
    #[error("readings file ends inside the record at byte {offset}")]
    Truncated { offset: u64 },
    #[error("record at byte {offset} declares {len} bytes; a record holds 11 to {MAX_RECORD_BYTES}")]
    BadLength { offset: u64, len: u64 },
    #[error("record at byte {offset} has a malformed gateway id")]
    BadGateway { offset: u64 },
}

#[derive(Debug, Error)]
pub enum GroundTruthError {
    #[error("reading ground truth: {0}")]
    Io(#[from] io::Error),
    #[error("ground truth line {line} is longer than {MAX_GROUND_TRUTH_LINE} bytes")]
    LineTooLong { line: u64 },
    #[error("ground truth line {line}: {source}")]
    Json { line: u64, source: serde_json::Error },
}

#[derive(Debug, Error)]
pub enum ExportError {
    #[error("no sensor with id {0} in the layout")]
    UnknownSensor(u32),
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error("writing the CSV: {0}")]
    Io(#[from] io::Error),
}

/// Writes gateway batches as length-prefixed records (format in the crate documentation).
#[derive(Debug)]
pub struct ReadingsWriter<W: Write> {
    out: W,
    records: u64,
    readings: u64,
}

impl<W: Write> ReadingsWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(READINGS_MAGIC)?;
        out.write_all(&[READINGS_FORMAT_VERSION])?;
        Ok(ReadingsWriter { out, records: 0, readings: 0 })
    }

    /// Writes one batch; returns `false` (and writes nothing) for an empty batch.
    pub fn write_batch(&mut self, batch: &GatewayBatch) -> Result<bool, RecordError> {
        if batch.readings.is_empty() {
            return Ok(false);
        }
        let payload = telemetry::encode(&batch.readings)?;
        self.write_record(&batch.gateway, batch.sequence, &payload)?;
        self.readings += batch.readings.len() as u64;
        Ok(true)
    }

    /// Writes one record from an already encoded batch.
    pub fn write_record(&mut self, gateway: &str, sequence: u64, payload: &[u8]) -> Result<(), RecordError> {
        if gateway.is_empty() || gateway.len() > MAX_GATEWAY_BYTES {
            return Err(RecordError::BadGateway(gateway.len()));
        }
        if payload.is_empty() {
            return Err(RecordError::EmptyPayload);
        }
        let len = 1 + gateway.len() + 8 + payload.len();
        if len > MAX_RECORD_BYTES as usize {
            return Err(RecordError::TooLarge(len));
        }
        self.out.write_all(&(len as u32).to_le_bytes())?;
        self.out.write_all(&[gateway.len() as u8])?;
        self.out.write_all(gateway.as_bytes())?;
        self.out.write_all(&sequence.to_le_bytes())?;
        self.out.write_all(payload)?;
        self.records += 1;
        Ok(())
    }

    pub fn records(&self) -> u64 {
        self.records
    }
    /// Readings written through [`ReadingsWriter::write_batch`].
    pub fn readings(&self) -> u64 {
        self.readings
    }
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// One record of a readings file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedBatch {
    pub gateway: String,
    pub sequence: u64,
    /// The batch exactly as `telemetry::encode` wrote it, ready to send as is.
    pub payload: Vec<u8>,
}

impl RecordedBatch {
    pub fn readings(&self) -> Result<Vec<Reading>, telemetry::DecodeError> {
        telemetry::decode(&self.payload)
    }
}

/// Replays a readings file record by record. Never panics and never allocates more
/// than the input holds, whatever the bytes.
#[derive(Debug)]
pub struct ReadingsReader<R: Read> {
    input: R,
    offset: u64,
    done: bool,
}

impl<R: Read> ReadingsReader<R> {
    /// Reads and checks the file header.
    pub fn new(mut input: R) -> Result<Self, ReplayError> {
        let mut header = [0u8; 8];
        let got = read_up_to(&mut input, &mut header)?;
        if got < header.len() || &header[..7] != READINGS_MAGIC {
            return Err(ReplayError::NotAReadingsFile);
        }
        if header[7] != READINGS_FORMAT_VERSION {
            return Err(ReplayError::UnsupportedVersion(header[7]));
        }
        Ok(ReadingsReader { input, offset: 8, done: false })
    }

    /// The next record, or `None` at a clean end of file.
    pub fn next_record(&mut self) -> Result<Option<RecordedBatch>, ReplayError> {
        let offset = self.offset;
        let mut prefix = [0u8; 4];
        match read_up_to(&mut self.input, &mut prefix)? {
            0 => return Ok(None),
            4 => {}
            _ => return Err(ReplayError::Truncated { offset }),
        }
        let len = u32::from_le_bytes(prefix);
        if !(11..=MAX_RECORD_BYTES).contains(&len) {
            return Err(ReplayError::BadLength { offset, len: u64::from(len) });
        }
        // `take` grows the buffer only as bytes arrive, so a lying length costs nothing.
        let mut body = Vec::new();
        (&mut self.input).take(u64::from(len)).read_to_end(&mut body)?;
        if body.len() != len as usize {
            return Err(ReplayError::Truncated { offset });
        }
        let gateway_len = usize::from(body[0]);
        if gateway_len == 0 || 1 + gateway_len + 8 >= body.len() {
            return Err(ReplayError::BadGateway { offset });
        }
        let gateway =
            std::str::from_utf8(&body[1..1 + gateway_len]).map_err(|_| ReplayError::BadGateway { offset })?.to_string();
        let mut sequence = [0u8; 8];
        sequence.copy_from_slice(&body[1 + gateway_len..1 + gateway_len + 8]);
        let payload = body.split_off(1 + gateway_len + 8);
        self.offset += 4 + u64::from(len);
        Ok(Some(RecordedBatch { gateway, sequence: u64::from_le_bytes(sequence), payload }))
    }
}

impl<R: Read> Iterator for ReadingsReader<R> {
    type Item = Result<RecordedBatch, ReplayError>;

    /// Yields records until the end of the file or the first error.
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_record().transpose();
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}

/// Fills `buf` as far as the input allows; returns how many bytes were read.
fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Writes events as JSON lines: the ground truth of a run.
#[derive(Debug)]
pub struct GroundTruthWriter<W: Write> {
    out: W,
    lines: u64,
}

impl<W: Write> GroundTruthWriter<W> {
    pub fn new(out: W) -> Self {
        GroundTruthWriter { out, lines: 0 }
    }

    pub fn write(&mut self, event: &FactoryEvent) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, event)?;
        self.out.write_all(b"\n")?;
        self.lines += 1;
        Ok(())
    }

    pub fn write_all(&mut self, events: &[FactoryEvent]) -> io::Result<()> {
        events.iter().try_for_each(|event| self.write(event))
    }

    pub fn lines(&self) -> u64 {
        self.lines
    }
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Reads ground-truth JSON lines back into events; blank lines are skipped.
pub fn read_ground_truth<R: BufRead>(input: R) -> GroundTruthReader<R> {
    GroundTruthReader { input, line: 0, done: false }
}

#[derive(Debug)]
pub struct GroundTruthReader<R: BufRead> {
    input: R,
    line: u64,
    done: bool,
}

impl<R: BufRead> Iterator for GroundTruthReader<R> {
    type Item = Result<FactoryEvent, GroundTruthError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = Vec::new();
        while !self.done {
            buf.clear();
            self.line += 1;
            let limit = MAX_GROUND_TRUTH_LINE as u64 + 1;
            let read = match (&mut self.input).take(limit).read_until(b'\n', &mut buf) {
                Ok(read) => read,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.into()));
                }
            };
            if read == 0 {
                self.done = true;
                return None;
            }
            if buf.len() > MAX_GROUND_TRUTH_LINE {
                self.done = true;
                return Some(Err(GroundTruthError::LineTooLong { line: self.line }));
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let parsed =
                serde_json::from_slice(&buf).map_err(|source| GroundTruthError::Json { line: self.line, source });
            if parsed.is_err() {
                self.done = true;
            }
            return Some(parsed);
        }
        None
    }
}

/// What [`export_sensor_csv`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorSeries {
    /// Rows written (readings; a dropout leaves no row).
    pub rows: u64,
    /// The faults that touched the sensor and started in the exported range: the labels
    /// against which a detector's scores can be measured.
    pub faults: Vec<FaultRecord>,
}

/// Writes one sensor's readings in `start_ms..end_ms` as CSV: a `timestamp,value` header,
/// then one row per reading with the timestamp in milliseconds since the Unix epoch.
///
/// Only the sensor's machine is simulated, so a month at one reading a second takes
/// seconds, and the values are exactly those of a full run with the same inputs.
pub fn export_sensor_csv<W: Write>(
    layout: &Layout,
    config: &SimConfig,
    seed: u64,
    start_ms: i64,
    end_ms: i64,
    sensor: u32,
    out: W,
) -> Result<SensorSeries, ExportError> {
    let info = layout.sensor(sensor).ok_or(ExportError::UnknownSensor(sensor))?;
    let machine = info.sensor.machine;
    let mut sim = PlantSim::for_machines(layout, info.sensor.plant, &[machine], config, seed, start_ms)?;
    let line = info.sensor.line - sim.lines().start;
    let mut out = BufWriter::new(out);
    out.write_all(b"timestamp,value\n")?;
    let mut series = SensorSeries { rows: 0, faults: Vec::new() };
    let mut step = crate::Step::default();
    while sim.next_ts_ms() < end_ms {
        sim.step_into(&mut step);
        let readings = &step.batches[line].readings;
        if let Ok(at) = readings.binary_search_by_key(&sensor, |r| r.sensor) {
            let r = readings[at];
            // Values are f32; printing them as f32 gives the shortest text that reads back exactly.
            writeln!(out, "{},{}", r.ts_ms, r.value as f32)?;
            series.rows += 1;
        }
        for event in &step.events {
            if let FactoryEvent::FaultStarted(record) = event
                && record.sensors.iter().any(|s| s.id == sensor)
            {
                series.faults.push(record.clone());
            }
        }
    }
    out.flush()?;
    Ok(series)
}
