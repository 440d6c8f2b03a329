//! The evaluation end to end on small recorded runs with faults placed by hand, and the
//! scoring rules on hand-made episodes.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;

use anomaly_eval::episodes::{Episode, Joined};
use anomaly_eval::score::{PlantSize, ScoreRules, Span, score};
use anomaly_eval::truth::{Downtime, GroundTruth};
use anomaly_eval::{EvalError, TruthError, evaluate_run, read_truth};
use layout::{Layout, Scale};
use simulator::{Factory, FactoryEvent, FaultConfig, FaultRecord, FaultShape, OutputDir, SensorRef, SimConfig, Step};

const T0: i64 = 1_772_409_600_000;

fn layout() -> Layout {
    Layout::default_with(&Scale { plants: Some(1), lines_per_plant: Some(1), sensors_per_plant: Some(60) }).unwrap()
}

/// What to do to one sensor during `from_s..to_s` of the run.
#[derive(Clone, Copy)]
enum Inject {
    Add(f64),
    Drop,
}

struct Planted {
    sensor: usize,
    from_s: i64,
    to_s: i64,
    inject: Inject,
    /// Recorded in the ground truth under this shape; `None`: a disturbance nobody reports.
    shape: Option<FaultShape>,
}

/// Records a fault-free simulation of `seconds` with the planted disturbances applied.
fn record_run(dir: &Path, seconds: i64, planted: &[Planted]) {
    let layout = layout();
    let sim = SimConfig { faults: FaultConfig::none(), ..SimConfig::default() };
    let mut factory = Factory::new(&layout, &sim, 5, T0).unwrap();
    let mut out = OutputDir::create(dir, &factory).unwrap();
    let mut step = Step::default();
    for s in 0..seconds {
        factory.step_into(&mut step);
        for (n, p) in planted.iter().enumerate() {
            let sensor = &layout.sensors()[p.sensor];
            if (p.from_s..p.to_s).contains(&s) {
                let readings = &mut step.batches[sensor.line].readings;
                match p.inject {
                    Inject::Add(delta) => {
                        for r in readings.iter_mut().filter(|r| r.sensor == sensor.id) {
                            r.value = f64::from((r.value + delta) as f32);
                        }
                    }
                    Inject::Drop => readings.retain(|r| r.sensor != sensor.id),
                }
            }
            if let (Some(shape), true) = (&p.shape, s == p.from_s) {
                step.events.push(FactoryEvent::FaultStarted(FaultRecord {
                    plant: "P1".into(),
                    fault: n as u64 + 1,
                    machine: layout.machines()[sensor.machine].id.clone(),
                    sensors: vec![SensorRef { id: sensor.id, name: sensor.name.clone() }],
                    start_ms: T0 + p.from_s * 1000,
                    end_ms: T0 + p.to_s * 1000,
                    shape: shape.clone(),
                }));
            }
        }
        out.write_step(&step).unwrap();
    }
    out.finish().unwrap();
}

fn width(sensor: usize) -> f64 {
    let layout = layout();
    let (lo, hi) = layout.sensor(layout.sensors()[sensor].id).unwrap().normal_range();
    hi - lo
}

#[test]
fn known_faults_are_found_and_an_unreported_disturbance_is_a_false_episode() {
    let dir = tempfile::tempdir().unwrap();
    let layout = layout();
    // Sensors on four different machines, so the episodes cannot merge. The faults come
    // late enough that every machine's load has changed, so its common mode is learned.
    let machine_start = |m: usize| layout.machines()[m].sensors.start;
    let (a, b, c, d) = (machine_start(0) + 1, machine_start(1) + 2, machine_start(2) + 3, machine_start(3));
    let (wa, wb, wd) = (width(a), width(b), width(d));
    let planted = [
        Planted {
            sensor: a,
            from_s: 2700,
            to_s: 2702,
            inject: Inject::Add(0.8 * wa),
            shape: Some(FaultShape::Spike { delta: 0.8 * wa }),
        },
        Planted {
            sensor: b,
            from_s: 2800,
            to_s: 3300,
            inject: Inject::Add(0.4 * wb),
            shape: Some(FaultShape::LevelShift { delta: 0.4 * wb }),
        },
        Planted { sensor: c, from_s: 2900, to_s: 3200, inject: Inject::Drop, shape: Some(FaultShape::Dropout) },
        // Nobody reports this one: whatever it raises is a false episode.
        Planted { sensor: d, from_s: 3000, to_s: 3003, inject: Inject::Add(0.9 * wd), shape: None },
    ];
    record_run(dir.path(), 3600, &planted);

    let report = evaluate_run(dir.path()).unwrap();
    for kind in ["spike", "level_shift", "dropout"] {
        assert_eq!(report.recall_by_kind[kind], Some(1.0), "{kind}: {report:#?}");
        assert_eq!(report.kinds[kind].faults, 1);
        let delay = report.median_delay_s_by_kind[kind].unwrap();
        assert!((0.0..=60.0).contains(&delay), "{kind} delay {delay}");
    }
    assert_eq!(report.recall_by_kind["drift"], None, "no drift was injected");
    let d_id = layout.sensors()[d].id;
    assert!(
        report.false_samples.iter().any(|f| f.sensors.contains(&d_id) && f.start_ms >= T0 + 3_000_000),
        "the unreported disturbance must be a false episode: {:#?}",
        report.false_samples
    );
    assert!(report.episodes.false_episodes >= 1);
    assert!(report.false_episodes_per_plant_hour > 0.0);
    assert_eq!(report.delay_basis, "raised");

    let json = serde_json::to_value(&report).unwrap();
    for key in ["recall_by_kind", "median_delay_s_by_kind", "false_episodes_per_plant_hour"] {
        assert!(json.get(key).is_some(), "{key} missing from the JSON report");
    }
    assert!(json["recall_by_kind"]["spike"].is_number());
}

fn episode(id: &str, machine: &str, sensor: u32, at_ms: i64) -> Episode {
    Episode {
        id: id.into(),
        machine: machine.into(),
        start_ms: at_ms,
        detected_ms: at_ms,
        resolved_ms: Some(at_ms + 120_000),
        sensors: vec![Joined { sensor, joined_ms: at_ms, test: "level_shift".into() }],
        first_test: "level_shift".into(),
        peak_score: 0.9,
    }
}

#[test]
fn episodes_are_matched_false_or_excused_by_the_stated_rules() {
    let fault = FaultRecord {
        plant: "P1".into(),
        fault: 1,
        machine: "P1-L01-M001".into(),
        sensors: vec![SensorRef { id: 1_000_003, name: "P1-L01-M001-TEMP4".into() }],
        start_ms: T0 + 3_600_000,
        end_ms: T0 + 3_900_000,
        shape: FaultShape::LevelShift { delta: 5.0 },
    };
    let truth = GroundTruth {
        faults: vec![fault],
        downtime: vec![Downtime {
            machine: "P1-L01-M002".into(),
            start_ms: T0 + 7_200_000,
            end_ms: Some(T0 + 9_000_000),
        }],
        unread: Default::default(),
    };
    let episodes = vec![
        // Names the fault's sensor 4 s after it started: a match, 4 s delay.
        episode("P1-L01-M001-a", "P1-L01-M001", 1_000_003, T0 + 3_604_000),
        // Same machine and sensor, two hours after the fault ended: false.
        episode("P1-L01-M001-b", "P1-L01-M001", 1_000_003, T0 + 11_000_000),
        // Same time as the fault, another sensor of the machine: false, beside a fault.
        episode("P1-L01-M001-c", "P1-L01-M001", 1_000_004, T0 + 3_700_000),
        // A machine under maintenance, and 5 minutes after it ran again: excused.
        episode("P1-L01-M002-a", "P1-L01-M002", 1_000_030, T0 + 8_000_000),
        episode("P1-L01-M002-b", "P1-L01-M002", 1_000_030, T0 + 9_300_000),
        // 20 minutes after it ran again: false.
        episode("P1-L01-M002-c", "P1-L01-M002", 1_000_030, T0 + 10_200_000),
        // Another plant is not evaluated.
        episode("P2-L01-M001-a", "P2-L01-M001", 2_000_003, T0 + 3_604_000),
    ];
    let span = Span { start_ms: T0, end_ms: T0 + 4 * 3_600_000 };
    let plants = [PlantSize { id: "P1".into(), sensors: 1_000 }];
    let r = score(&episodes, &truth, span, &plants, &ScoreRules::default(), "hand-made", "raised", None);
    assert_eq!(r.recall_by_kind["level_shift"], Some(1.0));
    assert_eq!(r.median_delay_s_by_kind["level_shift"], Some(4.0));
    assert_eq!(r.episodes.total, 6);
    assert_eq!(r.episodes.matched, 1);
    assert_eq!(r.episodes.during_maintenance, 2);
    assert_eq!(r.episodes.false_episodes, 3);
    assert_eq!(r.episodes.false_beside_a_fault, 1);
    assert!((r.false_episodes_per_plant_hour - 0.75).abs() < 1e-9);
    assert!((r.false_episodes_per_plant_hour_at_10k_sensors - 7.5).abs() < 1e-9);
    assert!(!r.all_targets_met());

    // Too late for the grace period: the fault is missed and the episode is false.
    let late = vec![episode("P1-L01-M001-z", "P1-L01-M001", 1_000_003, T0 + 3_900_000 + 121_000)];
    let r = score(&late, &truth, span, &plants, &ScoreRules::default(), "hand-made", "raised", None);
    assert_eq!(r.recall_by_kind["level_shift"], Some(0.0));
    assert_eq!(r.missed.len(), 1);
    assert_eq!(r.episodes.false_episodes, 1);
}

#[test]
fn a_fault_whose_window_holds_no_reading_is_reported_apart_not_missed() {
    // Two one-second spikes; the second fell on instants at which its sensor did not report.
    let spike = |fault: u64, sensor: u32, start_ms: i64| FaultRecord {
        plant: "P1".into(),
        fault,
        machine: "P1-L01-M001".into(),
        sensors: vec![SensorRef { id: sensor, name: format!("P1-L01-M001-TEMP{}", sensor - 999_999) }],
        start_ms,
        end_ms: start_ms + 1_000,
        shape: FaultShape::Spike { delta: 9.0 },
    };
    let (seen, silent) = (spike(1, 1_000_000, T0 + 3_600_000), spike(2, 1_000_001, T0 + 7_200_000));
    let mut unread = anomaly_eval::truth::UnreadFaults::new();
    unread.fault(&seen);
    unread.fault(&silent);
    unread.reading(1_000_001, T0 + 7_199_000);
    unread.reading(1_000_000, T0 + 3_600_000);
    unread.reading(1_000_001, T0 + 7_201_000);
    // A dropout's silence is the fault itself: it is never unread.
    let mut dropout = spike(3, 1_000_002, T0 + 9_000_000);
    dropout.shape = FaultShape::Dropout;
    unread.fault(&dropout);
    let truth = GroundTruth { faults: vec![seen, silent], downtime: Vec::new(), unread: unread.finish() };
    assert_eq!(truth.unread.len(), 1);
    let episodes = vec![episode("P1-L01-M001-a", "P1-L01-M001", 1_000_000, T0 + 3_601_000)];
    let span = Span { start_ms: T0, end_ms: T0 + 4 * 3_600_000 };
    let plants = [PlantSize { id: "P1".into(), sensors: 1_000 }];
    let r = score(&episodes, &truth, span, &plants, &ScoreRules::default(), "hand-made", "raised", None);
    assert_eq!(r.recall_by_kind["spike"], Some(1.0));
    assert_eq!((r.kinds["spike"].faults, r.kinds["spike"].unread), (1, 1));
    assert!(r.missed.is_empty());
    assert_eq!(r.unread.len(), 1);
    assert_eq!(r.unread[0].fault, 2);
}

#[test]
fn malformed_ground_truth_is_a_clear_error() {
    // Not JSON on line 2.
    let text = "\n{\"type\":\"fault_ended\",\"plant\":\"P1\",\"fault\":1,\"ts_ms\":5}\n{oops\n";
    let err = read_truth(text.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("line 3"), "{err}");

    // Well-formed JSON that is not a ground-truth event.
    let err = read_truth("{\"type\":\"fault_started\",\"plant\":\"P1\"}\n".as_bytes()).unwrap_err();
    assert!(matches!(err, TruthError::Read(_)), "{err}");

    // A fault that ends before it starts.
    let bad = r#"{"type":"fault_started","plant":"P1","fault":7,"machine":"P1-L01-M001","sensors":[{"id":1000000,"name":"P1-L01-M001-TEMP1"}],"start_ms":2000,"end_ms":1000,"kind":"spike","delta":3.0}"#;
    let err = read_truth(format!("{bad}\n").as_bytes()).unwrap_err();
    assert!(matches!(err, TruthError::InvalidFault { fault: 7, .. }), "{err}");
    assert!(err.to_string().contains("not after its start"), "{err}");

    // The same fault twice.
    let good = bad.replace("\"end_ms\":1000", "\"end_ms\":3000");
    let err = read_truth(format!("{good}\n{good}\n").as_bytes()).unwrap_err();
    assert!(matches!(err, TruthError::DuplicateFault { fault: 7, .. }), "{err}");

    // A recorded run whose ground truth was damaged.
    let dir = tempfile::tempdir().unwrap();
    record_run(dir.path(), 130, &[]);
    let mut f = std::fs::OpenOptions::new().append(true).open(dir.path().join("ground-truth.jsonl")).unwrap();
    f.write_all(b"{\"type\":\"fault_started\",\n").unwrap();
    drop(f);
    let err = evaluate_run(dir.path()).unwrap_err();
    assert!(matches!(err, EvalError::Truth(TruthError::Read(_))), "{err}");
    assert!(err.to_string().starts_with("ground truth: "), "{err}");

    // No ground truth at all.
    std::fs::remove_file(dir.path().join("ground-truth.jsonl")).unwrap();
    let err = evaluate_run(dir.path()).unwrap_err();
    assert!(matches!(err, EvalError::Io { .. }), "{err}");
    assert!(err.to_string().contains("ground-truth.jsonl"), "{err}");
}

#[test]
fn a_run_of_another_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let planted = [Planted {
        sensor: 1,
        from_s: 3,
        to_s: 4,
        inject: Inject::Add(10.0),
        shape: Some(FaultShape::Spike { delta: 10.0 }),
    }];
    record_run(dir.path(), 5, &planted);
    // The same sizes, but the first machine type's temperatures are named otherwise.
    let renamed = layout::DEFAULT_LAYOUT_TOML.replacen("kind = \"TEMP\"", "kind = \"TMP\"", 1);
    let options = anomaly_eval::RunOptions { layout_toml: Some(renamed), ..anomaly_eval::RunOptions::default() };
    let err = anomaly_eval::evaluate_run_with(dir.path(), &options).unwrap_err();
    assert!(matches!(err, EvalError::LayoutMismatch(_)), "{err}");
    assert!(err.to_string().contains("P1-L01-M001-TEMP2"), "{err}");
}
