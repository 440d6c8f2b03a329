//! A run recorded to a directory (`--output DIR`) and opened again for replay.
//!
//! This is the only module that touches the file system; the generator itself does no IO.

use crate::config::SimConfig;
use crate::factory::{Factory, Step};
use crate::record::{
    GroundTruthReader, GroundTruthWriter, ReadingsReader, ReadingsWriter, RecordError, ReplayError, read_ground_truth,
};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use thiserror::Error;

pub const MANIFEST_FILE: &str = "manifest.json";
pub const GROUND_TRUTH_FILE: &str = "ground-truth.jsonl";
pub const OUTPUT_FORMAT_VERSION: u32 = 1;

/// `readings-P1.bin`.
pub fn readings_file_name(plant_id: &str) -> String {
    format!("readings-{plant_id}.bin")
}

#[derive(Debug, Error)]
pub enum OutputError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0} already holds a recorded run; choose an empty directory")]
    AlreadyUsed(PathBuf),
    #[error("{path}: {source}")]
    Manifest { path: PathBuf, source: serde_json::Error },
    #[error("{path}: {source}")]
    Record { path: PathBuf, source: RecordError },
    #[error("{path}: {source}")]
    Replay { path: PathBuf, source: ReplayError },
    #[error("the recorded run has no plant {0}")]
    UnknownPlant(String),
    #[error("a step holds a batch for line {0}, which this run does not have")]
    UnknownLine(usize),
}

/// `manifest.json`: what the directory holds and how to reproduce it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub seed: u64,
    pub start_ms: i64,
    /// Sampling interval at the start of the run.
    pub step_ms: u64,
    /// Timestamp of the last step written, if any.
    pub last_ts_ms: Option<i64>,
    pub steps: u64,
    /// `false` until the run was finished; a crashed run leaves `false` here.
    pub complete: bool,
    pub config: SimConfig,
    pub plants: Vec<ManifestPlant>,
    pub ground_truth: String,
    pub events: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestPlant {
    pub id: String,
    pub file: String,
    pub gateways: Vec<String>,
    pub sensors: u64,
    pub batches: u64,
    pub readings: u64,
}

/// Writes a run into a directory step by step.
#[derive(Debug)]
pub struct OutputDir {
    dir: PathBuf,
    manifest: Manifest,
    readings: Vec<ReadingsWriter<BufWriter<File>>>,
    /// Index into `readings` of each line's plant.
    line_plant: Vec<usize>,
    ground_truth: GroundTruthWriter<BufWriter<File>>,
}

impl OutputDir {
    /// Creates the directory (if needed) and its files for `factory`'s plants. Refuses a
    /// directory that already holds a run, so two runs are never mixed.
    pub fn create(dir: &Path, factory: &Factory) -> Result<Self, OutputError> {
        fs::create_dir_all(dir).map_err(|source| OutputError::Io { path: dir.to_path_buf(), source })?;
        let manifest_path = dir.join(MANIFEST_FILE);
        if manifest_path.exists() {
            return Err(OutputError::AlreadyUsed(dir.to_path_buf()));
        }
        let mut plants = Vec::new();
        let mut readings = Vec::new();
        let mut line_plant = Vec::new();
        for (i, plant) in factory.plants().iter().enumerate() {
            let file = readings_file_name(plant.plant_id());
            let path = dir.join(&file);
            let writer = create(&path)?;
            let writer = ReadingsWriter::new(writer).map_err(|source| OutputError::Io { path, source })?;
            readings.push(writer);
            for line in plant.lines() {
                if line_plant.len() <= line {
                    line_plant.resize(line + 1, usize::MAX);
                }
                line_plant[line] = i;
            }
            plants.push(ManifestPlant {
                id: plant.plant_id().to_string(),
                file,
                gateways: plant.gateways().map(str::to_string).collect(),
                sensors: plant.sensors_per_step() as u64,
                batches: 0,
                readings: 0,
            });
        }
        let ground_truth = GroundTruthWriter::new(create(&dir.join(GROUND_TRUTH_FILE))?);
        let manifest = Manifest {
            format: OUTPUT_FORMAT_VERSION,
            seed: factory.seed(),
            start_ms: factory.next_ts_ms(),
            step_ms: factory.step_ms(),
            last_ts_ms: None,
            steps: 0,
            complete: false,
            config: factory.config().clone(),
            plants,
            ground_truth: GROUND_TRUTH_FILE.to_string(),
            events: 0,
        };
        let out = OutputDir { dir: dir.to_path_buf(), manifest, readings, line_plant, ground_truth };
        out.write_manifest()?;
        Ok(out)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends a step's batches (each to its plant's file) and its events.
    pub fn write_step(&mut self, step: &Step) -> Result<(), OutputError> {
        for batch in &step.batches {
            let plant = *self.line_plant.get(batch.line).ok_or(OutputError::UnknownLine(batch.line))?;
            let writer = self.readings.get_mut(plant).ok_or(OutputError::UnknownLine(batch.line))?;
            let wrote = writer.write_batch(batch).map_err(|source| OutputError::Record {
                path: self.dir.join(&self.manifest.plants[plant].file),
                source,
            })?;
            if wrote {
                self.manifest.plants[plant].batches += 1;
                self.manifest.plants[plant].readings += batch.readings.len() as u64;
            }
        }
        let path = || self.dir.join(GROUND_TRUTH_FILE);
        self.ground_truth.write_all(&step.events).map_err(|source| OutputError::Io { path: path(), source })?;
        self.manifest.events += step.events.len() as u64;
        self.manifest.steps += 1;
        self.manifest.last_ts_ms = Some(step.ts_ms);
        Ok(())
    }

    /// Flushes every file and marks the manifest complete.
    pub fn finish(mut self) -> Result<Manifest, OutputError> {
        for (writer, plant) in self.readings.iter_mut().zip(&self.manifest.plants) {
            writer.flush().map_err(|source| OutputError::Io { path: self.dir.join(&plant.file), source })?;
        }
        self.ground_truth
            .flush()
            .map_err(|source| OutputError::Io { path: self.dir.join(GROUND_TRUTH_FILE), source })?;
        self.manifest.complete = true;
        self.write_manifest()?;
        Ok(self.manifest)
    }

    fn write_manifest(&self) -> Result<(), OutputError> {
        let path = self.dir.join(MANIFEST_FILE);
        let text = serde_json::to_vec_pretty(&self.manifest)
            .map_err(|source| OutputError::Manifest { path: path.clone(), source })?;
        // Write then rename, so a crash never leaves a half-written manifest.
        let partial = self.dir.join(format!("{MANIFEST_FILE}.partial"));
        fs::write(&partial, text).map_err(|source| OutputError::Io { path: partial.clone(), source })?;
        fs::rename(&partial, &path).map_err(|source| OutputError::Io { path, source })
    }
}

fn create(path: &Path) -> Result<BufWriter<File>, OutputError> {
    File::create(path)
        .map(|f| BufWriter::with_capacity(1 << 20, f))
        .map_err(|source| OutputError::Io { path: path.to_path_buf(), source })
}

/// Runs `factory` until its next step would be at or after `end_ms`, writing every step
/// into a new run directory.
pub fn write_run(dir: &Path, factory: &mut Factory, end_ms: i64) -> Result<Manifest, OutputError> {
    let mut out = OutputDir::create(dir, factory)?;
    let mut step = Step::default();
    while factory.next_ts_ms() < end_ms {
        factory.step_into(&mut step);
        out.write_step(&step)?;
    }
    out.finish()
}

pub fn read_manifest(dir: &Path) -> Result<Manifest, OutputError> {
    let path = dir.join(MANIFEST_FILE);
    let file = File::open(&path).map_err(|source| OutputError::Io { path: path.clone(), source })?;
    serde_json::from_reader(BufReader::new(file)).map_err(|source| OutputError::Manifest { path, source })
}

/// Opens a plant's readings for replay, in the order they were written.
pub fn open_readings(dir: &Path, plant_id: &str) -> Result<ReadingsReader<BufReader<File>>, OutputError> {
    let manifest = read_manifest(dir)?;
    let plant = manifest.plants.iter().find(|p| p.id == plant_id).ok_or(OutputError::UnknownPlant(plant_id.into()))?;
    let path = dir.join(&plant.file);
    let file = File::open(&path).map_err(|source| OutputError::Io { path: path.clone(), source })?;
    ReadingsReader::new(BufReader::with_capacity(1 << 20, file)).map_err(|source| OutputError::Replay { path, source })
}

pub fn open_ground_truth(dir: &Path) -> Result<GroundTruthReader<BufReader<File>>, OutputError> {
    let path = dir.join(GROUND_TRUTH_FILE);
    let file = File::open(&path).map_err(|source| OutputError::Io { path, source })?;
    Ok(read_ground_truth(BufReader::new(file)))
}

impl OutputDir {
    /// Writes any buffered bytes, e.g. before reporting progress.
    pub fn flush(&mut self) -> Result<(), OutputError> {
        for (writer, plant) in self.readings.iter_mut().zip(&self.manifest.plants) {
            writer.flush().map_err(|source| OutputError::Io { path: self.dir.join(&plant.file), source })?;
        }
        self.ground_truth.flush().map_err(|source| OutputError::Io { path: self.dir.join(GROUND_TRUTH_FILE), source })
    }
}
