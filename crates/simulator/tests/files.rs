//! Recorded runs replay exactly, a sensor exports as CSV, and damaged files give typed errors.
// Test helpers unwrap freely: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use simulator::{
    Factory, FactoryEvent, FaultKind, GroundTruthError, GroundTruthWriter, OutputDir, OutputError, READINGS_MAGIC,
    ReadingsReader, ReadingsWriter, RecordError, ReplayError, Step, export_sensor_csv, open_ground_truth,
    open_readings, read_ground_truth, read_manifest, write_run,
};
use std::io::Cursor;

#[test]
fn a_recorded_run_replays_every_batch_and_event() {
    let layout = small_layout(2, 300, 3);
    let dir = tempfile::tempdir().unwrap();
    let mut factory = Factory::new(&layout, &busy(), 77, START_MS).unwrap();
    let manifest = write_run(dir.path(), &mut factory, START_MS + 600_000).unwrap();
    assert!(manifest.complete);
    assert_eq!(manifest.steps, 600);
    assert_eq!(manifest.last_ts_ms, Some(START_MS + 599_000));
    assert_eq!(read_manifest(dir.path()).unwrap(), manifest);
    assert_eq!(manifest.plants[1].gateways, ["P2-L01", "P2-L02", "P2-L03"]);

    let expected = run(&layout, &busy(), 77, 600);
    for (p, plant) in manifest.plants.iter().enumerate() {
        let records: Vec<_> = open_readings(dir.path(), &plant.id).unwrap().collect::<Result<_, _>>().unwrap();
        let batches: Vec<_> = expected
            .iter()
            .flat_map(|s| &s.batches)
            .filter(|b| *b.plant == *plant.id && !b.readings.is_empty())
            .collect();
        assert_eq!(records.len(), batches.len(), "plant {p}");
        assert_eq!(plant.batches, batches.len() as u64);
        for (record, batch) in records.iter().zip(batches) {
            assert_eq!(record.gateway, *batch.gateway);
            assert_eq!(record.sequence, batch.sequence);
            assert_eq!(record.readings().unwrap(), batch.readings);
        }
        let readings: usize = records.iter().map(|r| r.readings().unwrap().len()).sum();
        assert_eq!(plant.readings, readings as u64);
    }
    let events: Vec<FactoryEvent> = open_ground_truth(dir.path()).unwrap().collect::<Result<_, _>>().unwrap();
    let want: Vec<FactoryEvent> = expected.iter().flat_map(|s| s.events.iter().cloned()).collect();
    assert!(want.iter().any(|e| matches!(e, FactoryEvent::FaultStarted(f) if f.kind() == FaultKind::Machine)));
    assert_eq!(events, want);
    assert_eq!(manifest.events, want.len() as u64);

    let err = OutputDir::create(dir.path(), &factory).unwrap_err();
    assert!(matches!(err, OutputError::AlreadyUsed(_)), "{err}");
    assert!(matches!(open_readings(dir.path(), "P9"), Err(OutputError::UnknownPlant(_))));
}

#[test]
fn a_sensor_exports_as_csv_with_the_values_of_the_full_run() {
    let layout = small_layout(1, 200, 2);
    let mut config = busy();
    config.faults.dropout_rate_per_sensor_hour = 0.1;
    let steps = run(&layout, &config, 4, 1_800);
    // A sensor that had a fault, so the export must reproduce it too.
    let faulted = steps
        .iter()
        .flat_map(|s| &s.events)
        .find_map(|e| match e {
            FactoryEvent::FaultStarted(f) if f.kind() == FaultKind::Dropout => Some(f.sensors[0].id),
            _ => None,
        })
        .expect("a dropout in half an hour");
    let mut csv = Vec::new();
    let series = export_sensor_csv(&layout, &config, 4, START_MS, START_MS + 1_800_000, faulted, &mut csv).unwrap();
    let text = String::from_utf8(csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("timestamp,value"));
    let rows: Vec<(i64, f64)> = lines
        .map(|l| {
            let (ts, v) = l.split_once(',').unwrap();
            (ts.parse().unwrap(), v.parse::<f32>().unwrap().into())
        })
        .collect();
    let full: Vec<(i64, f64)> = steps
        .iter()
        .flat_map(|s| &s.batches)
        .flat_map(|b| &b.readings)
        .filter(|r| r.sensor == faulted)
        .map(|r| (r.ts_ms, r.value))
        .collect();
    assert!(full.len() < 1_800, "the dropout removed readings");
    assert_eq!(rows, full);
    assert_eq!(series.rows, full.len() as u64);
    assert!(series.faults.iter().any(|f| f.kind() == FaultKind::Dropout));
    assert!(series.faults.iter().all(|f| f.sensors.iter().any(|s| s.id == faulted)));

    let err = export_sensor_csv(&layout, &config, 4, START_MS, START_MS + 1_000, 42, Vec::new()).unwrap_err();
    assert!(matches!(err, simulator::ExportError::UnknownSensor(42)));
}

fn file_with(records: &[(&str, u64, &[u8])]) -> Vec<u8> {
    let mut writer = ReadingsWriter::new(Vec::new()).unwrap();
    for (gateway, sequence, payload) in records {
        writer.write_record(gateway, *sequence, payload).unwrap();
    }
    writer.into_inner()
}

fn replay(bytes: &[u8]) -> Result<Vec<simulator::RecordedBatch>, ReplayError> {
    ReadingsReader::new(Cursor::new(bytes))?.collect()
}

#[test]
fn damaged_readings_files_are_named_not_trusted() {
    let payload = telemetry::encode(&[telemetry::Reading::new(1_000_000, START_MS, 1.5)]).unwrap();
    let good = file_with(&[("P1-L01", 7, &payload), ("P1-L02", 8, &payload)]);
    assert_eq!(replay(&good).unwrap().len(), 2);

    assert!(matches!(replay(b""), Err(ReplayError::NotAReadingsFile)));
    assert!(matches!(replay(b"FWREAD"), Err(ReplayError::NotAReadingsFile)));
    assert!(matches!(replay(b"NOTREADS\x01"), Err(ReplayError::NotAReadingsFile)));
    let mut v2 = good.clone();
    v2[7] = 2;
    assert!(matches!(replay(&v2), Err(ReplayError::UnsupportedVersion(2))));
    // Cut anywhere inside a record: a typed error, never a panic or a short success.
    let first_end = 8 + 4 + 1 + 6 + 8 + payload.len();
    for cut in 9..good.len() {
        let result = replay(&good[..cut]);
        if cut == first_end {
            assert_eq!(result.unwrap().len(), 1);
        } else {
            assert!(matches!(result, Err(ReplayError::Truncated { .. })), "cut at {cut}: {result:?}");
        }
    }
    let mut huge = READINGS_MAGIC.to_vec();
    huge.push(1);
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(replay(&huge), Err(ReplayError::BadLength { offset: 8, .. })));
    let mut tiny = READINGS_MAGIC.to_vec();
    tiny.push(1);
    tiny.extend_from_slice(&3u32.to_le_bytes());
    tiny.extend_from_slice(&[1, b'x', 0]);
    assert!(matches!(replay(&tiny), Err(ReplayError::BadLength { .. })));

    let mut no_gateway = good.clone();
    no_gateway[12] = 0;
    assert!(matches!(replay(&no_gateway), Err(ReplayError::BadGateway { offset: 8 })));
    let mut long_gateway = good.clone();
    long_gateway[12] = 200;
    assert!(matches!(replay(&long_gateway), Err(ReplayError::BadGateway { .. })));
    let mut not_utf8 = good.clone();
    not_utf8[13] = 0xff;
    assert!(matches!(replay(&not_utf8), Err(ReplayError::BadGateway { .. })));
}

#[test]
fn replaying_arbitrary_bytes_never_panics() {
    let payload = telemetry::encode(&[telemetry::Reading::new(3, 1, 2.0), telemetry::Reading::new(4, 1, 3.0)]).unwrap();
    let good = file_with(&[("P1-L01", 1, &payload), ("P1-L02", 2, &payload), ("P1-L03", 3, &payload)]);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..5_000 {
        let mut bytes = good.clone();
        for _ in 0..1 + next() % 3 {
            let i = (next() as usize) % bytes.len();
            bytes[i] = next() as u8;
        }
        if let Ok(records) = replay(&bytes) {
            for record in records {
                let _ = record.readings();
            }
        }
    }
}

#[test]
fn writing_rejects_records_it_could_not_read_back() {
    let mut writer = ReadingsWriter::new(Vec::new()).unwrap();
    assert!(matches!(writer.write_record("", 1, &[1]), Err(RecordError::BadGateway(0))));
    assert!(matches!(writer.write_record(&"G".repeat(256), 1, &[1]), Err(RecordError::BadGateway(256))));
    assert!(matches!(writer.write_record("P1-L01", 1, &[]), Err(RecordError::EmptyPayload)));
    let big = vec![0u8; simulator::MAX_RECORD_BYTES as usize];
    assert!(matches!(writer.write_record("P1-L01", 1, &big), Err(RecordError::TooLarge(_))));
    assert_eq!(writer.records(), 0);
}

#[test]
fn ground_truth_lines_round_trip_and_bad_lines_are_located() {
    let layout = small_layout(1, 200, 2);
    let mut config = busy();
    config.step_ms = 600_000;
    let events: Vec<FactoryEvent> = run(&layout, &config, 13, 30 * 144).iter().flat_map(|s| s.events.clone()).collect();
    for wanted in ["fault_started", "fault_ended", "machine_failed", "maintenance_started", "maintenance_completed"] {
        let json = events.iter().map(|e| serde_json::to_string(e).unwrap()).find(|j| j.contains(wanted));
        assert!(json.is_some(), "no {wanted} in thirty busy days");
    }
    let mut writer = GroundTruthWriter::new(Vec::new());
    writer.write_all(&events).unwrap();
    let mut bytes = writer.into_inner();
    let back: Vec<FactoryEvent> = read_ground_truth(Cursor::new(&bytes)).collect::<Result<_, _>>().unwrap();
    assert_eq!(back, events);

    let first = String::from_utf8(bytes.clone()).unwrap().lines().next().unwrap().to_string();
    let with_blank = format!("{first}\n\n{first}\n");
    assert_eq!(read_ground_truth(Cursor::new(with_blank)).count(), 2);

    bytes.extend_from_slice(b"{\"type\":\"meteor_strike\"}\n");
    let line = events.len() as u64 + 1;
    let result: Result<Vec<_>, _> = read_ground_truth(Cursor::new(&bytes)).collect();
    assert!(matches!(result, Err(GroundTruthError::Json { line: l, .. }) if l == line));
    let long = vec![b' '; simulator::MAX_GROUND_TRUTH_LINE + 10];
    let result: Result<Vec<_>, _> = read_ground_truth(Cursor::new(long)).collect();
    assert!(matches!(result, Err(GroundTruthError::LineTooLong { line: 1 })));
}

#[test]
fn an_output_dir_can_be_written_step_by_step_with_a_new_interval() {
    let layout = small_layout(1, 200, 2);
    let dir = tempfile::tempdir().unwrap();
    let mut factory = Factory::new(&layout, &clean(), 1, START_MS).unwrap();
    let mut out = OutputDir::create(&dir.path().join("run"), &factory).unwrap();
    let mut step = Step::default();
    factory.set_step_ms(60_000).unwrap();
    for _ in 0..10 {
        factory.step_into(&mut step);
        out.write_step(&step).unwrap();
    }
    factory.set_step_ms(1_000).unwrap();
    for _ in 0..10 {
        factory.step_into(&mut step);
        out.write_step(&step).unwrap();
    }
    let manifest = out.finish().unwrap();
    assert_eq!(manifest.last_ts_ms, Some(START_MS + 10 * 60_000 + 9 * 1_000));
    let records: Vec<_> = open_readings(&dir.path().join("run"), "P1").unwrap().collect::<Result<_, _>>().unwrap();
    let sequences: Vec<u64> = records.iter().filter(|r| r.gateway == "P1-L01").map(|r| r.sequence).collect();
    assert_eq!(sequences.len(), 20);
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "sequences grow");
    assert!(factory.set_step_ms(0).is_err());
}
