//! Training and prediction through the public API on small generated run-to-failure tables.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use maintenance::{
    BoosterParams, DropReason, Error, FeatureConfig, Model, PREDICTION_HEADER, TrainOptions, TrainingSet, predict_csv,
    read_histories, train_csv,
};

/// Deterministic noise in [-0.5, 0.5).
fn noise(unit: u32, cycle: u32, salt: u32) -> f64 {
    let h = unit
        .wrapping_mul(2_654_435_761)
        .wrapping_add(cycle.wrapping_mul(40_503))
        .wrapping_add(salt.wrapping_mul(97))
        .rotate_left(13)
        .wrapping_mul(2_246_822_519);
    f64::from(h % 1000) / 1000.0 - 0.5
}

fn life(unit: u32) -> u32 {
    40 + (unit * 37) % 41
}

/// Rows of one unit from cycle 1 to `until`: `wear` and `temp` rise as the unit nears its
/// failure at `life(unit)`, `flat` never changes, `gappy` has every fifth cell empty.
fn unit_rows(unit: u32, until: u32) -> String {
    let l = f64::from(life(unit));
    let mut out = String::new();
    for c in 1..=until {
        let x = f64::from(c) / l;
        let wear = 1.0 + 3.0 * x * x + 0.1 * noise(unit, c, 1);
        let temp = 50.0 + 10.0 * x + 0.5 * noise(unit, c, 2);
        let gappy = if c % 5 == 0 { String::new() } else { format!("{:.4}", x + 0.05 * noise(unit, c, 3)) };
        out.push_str(&format!("{unit},{c},{wear:.4},{temp:.4},7,{gappy}\n"));
    }
    out
}

const HEADER: &str = "unit,cycle,wear,temp,flat,gappy\n";

fn training_csv(units: u32) -> String {
    let mut csv = HEADER.to_string();
    for u in 1..=units {
        csv.push_str(&unit_rows(u, life(u)));
    }
    csv
}

fn options(seed: u64) -> TrainOptions {
    TrainOptions {
        rul_cap: Some(40.0),
        seed,
        validation_units: 5,
        calibration_folds: 3,
        interval_min_bin_points: 40,
        truncations_per_unit: 5,
        min_history_rows: 10,
        created_at_ms: 1_700_000_000_000,
        features: FeatureConfig { windows: vec![3.0, 6.0], baseline_window: 5.0 },
        booster: BoosterParams {
            iterations: 40,
            learning_rate: 0.15,
            min_leaf_weight: 5.0,
            nbins: 32,
            ..BoosterParams::default()
        },
        ..TrainOptions::default()
    }
}

fn trained(seed: u64) -> Model {
    train_csv(training_csv(30).as_bytes(), &options(seed)).unwrap().0
}

/// The model most tests share, trained once.
fn shared() -> Model {
    static JSON: OnceLock<String> = OnceLock::new();
    Model::from_json(JSON.get_or_init(|| trained(5).to_json().unwrap())).unwrap()
}

#[test]
fn given_run_to_failure_units_when_training_then_the_model_learns_wear_and_records_itself() {
    let (model, report) = train_csv(training_csv(30).as_bytes(), &options(3)).unwrap();

    assert_eq!(
        model.feature_set().dropped.iter().map(|d| (d.name.as_str(), d.reason)).collect::<Vec<_>>(),
        vec![("flat", DropReason::Constant)]
    );
    let t = model.training();
    assert_eq!((t.seed, t.created_at_ms, t.units), (3, 1_700_000_000_000, 25));
    assert_eq!(t.validation_units.len(), 5);
    assert!(t.validation_units.iter().all(|v| !t.training_units.contains(v)));
    assert_eq!(model.target().rul_cap, Some(40.0));

    let m = model.metrics().unwrap();
    let every = m.every_row.as_ref().unwrap();
    let cut = m.truncated.as_ref().unwrap();
    assert_eq!(cut.points, 25);
    // Labels span 0..=40; always predicting their mean would score about 13.
    assert!(every.rmse < 3.0, "every-row RMSE {}", every.rmse);
    assert!(cut.rmse < 4.0, "cut RMSE {}", cut.rmse);
    assert!(every.coverage > 0.75, "coverage {}", every.coverage);
    assert!(report.out_of_fold.as_ref().unwrap().rmse < 3.0);
    for p in &report.validation_points {
        assert!(0.0 <= p.lower && p.lower <= p.predicted_rul && p.predicted_rul <= p.upper);
        assert!(p.predicted_rul <= 40.0, "the point prediction stays within the cap");
    }
    // Lives are 40–80 cycles and the cap 40: young units' truth, and the interval's upper
    // bound, reach past the cap; the figures against the truth as given say how well.
    assert!(report.validation_points.iter().any(|p| p.upper > 40.0));
    let as_given = m.truncated_as_given.as_ref().unwrap();
    assert_eq!(as_given.points, 25);
    assert!(as_given.nasa_score.is_some());
    assert!(!m.truncated_by_bucket.is_empty());
}

#[test]
fn given_calibration_groups_when_training_then_the_interval_counts_groups_not_units() {
    // Each unit its own draw: 25 training units, and a bin needs 19 at level 0.9.
    let (model, _) = train_csv(training_csv(30).as_bytes(), &options(3)).unwrap();
    let units: Vec<usize> = model.interval().bins.iter().map(|b| b.units).collect();
    assert!(units.iter().all(|&u| (19..=25).contains(&u)), "{units:?}");
    // All units one group (one machine's runs): a single draw, so the interval can only
    // span every out-of-fold residual, and covers all of them.
    let groups = (1..=30).map(|u| (u.to_string(), "machine".to_string())).collect();
    let options = TrainOptions { calibration_groups: Some(groups), ..options(3) };
    let (model, report) = train_csv(training_csv(30).as_bytes(), &options).unwrap();
    let bins = &model.interval().bins;
    assert_eq!((bins.len(), bins[0].units), (1, 1), "{bins:?}");
    assert_eq!(report.out_of_fold.unwrap().coverage, 1.0);
}

#[test]
fn given_one_seed_when_training_twice_then_the_model_files_are_identical() {
    let a = trained(11).to_json().unwrap();
    let b = trained(11).to_json().unwrap();
    assert_eq!(a, b);
    let c = trained(12).to_json().unwrap();
    assert_ne!(a, c);
}

fn partial_csv() -> String {
    // Unit 102 first, cut well before failure; unit 101 cut 3 cycles before failure.
    let mut csv = HEADER.to_string();
    csv.push_str(&unit_rows(102, life(102) / 3));
    csv.push_str(&unit_rows(101, life(101) - 3));
    csv
}

fn predict_to_string(model: &Model, input: &str) -> Result<String, Error> {
    let mut out = Vec::new();
    predict_csv(model, input.as_bytes(), &mut out)?;
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn given_partial_histories_when_predicting_then_one_row_per_unit_in_input_order() {
    let model = shared();
    let text = predict_to_string(&model, &partial_csv()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], PREDICTION_HEADER.join(","));
    assert_eq!(lines.len(), 3);
    let row = |line: &str| -> (String, Vec<f64>) {
        let mut f = line.split(',');
        let unit = f.next().unwrap().to_string();
        (unit, f.map(|v| v.parse().unwrap()).collect())
    };
    let (u1, far) = row(lines[1]);
    let (u2, near) = row(lines[2]);
    assert_eq!((u1.as_str(), u2.as_str()), ("102", "101"));
    for v in far.iter().chain(&near) {
        assert!(*v >= 0.0);
    }
    assert!(near[0] < 12.0, "3 cycles from failure, predicted {}", near[0]);
    assert!(far[0] > 25.0, "far from failure, predicted {}", far[0]);
    assert!(near[1] <= near[0] && near[0] <= near[2]);
}

#[test]
fn given_other_columns_when_predicting_then_the_feature_set_mismatch_is_named() {
    let model = shared();
    let input = partial_csv().replacen("gappy", "humidity", 1);
    let err = predict_to_string(&model, &input).unwrap_err();
    assert_eq!(err.code(), "feature_set_mismatch");
    let text = err.to_string();
    assert!(text.contains("lacks [gappy]") && text.contains("unexpected [humidity]"), "{text}");
    // The same columns in another order are fine.
    let reordered: String = partial_csv()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},{},{},{},{},{}\n", f[5], f[4], f[3], f[2], f[1], f[0])
        })
        .collect();
    assert_eq!(predict_to_string(&model, &reordered).unwrap(), predict_to_string(&model, &partial_csv()).unwrap());
}

#[test]
fn given_a_model_file_when_reading_it_back_then_it_predicts_the_same() {
    let model = shared();
    let json = model.to_json().unwrap();
    let back = Model::from_json(&json).unwrap();
    assert_eq!(back.to_json().unwrap(), json);
    assert_eq!(back.format_version(), maintenance::FORMAT_VERSION);
    assert_eq!(back.feature_set(), model.feature_set());
    assert_eq!(back.metrics(), model.metrics());
    assert_eq!(predict_to_string(&back, &partial_csv()).unwrap(), predict_to_string(&model, &partial_csv()).unwrap());
}

#[test]
fn given_a_foreign_or_damaged_model_file_when_reading_then_it_is_refused() {
    let json = shared().to_json().unwrap();
    let newer = json.replacen("\"format_version\":1", "\"format_version\":2", 1);
    assert!(matches!(Model::from_json(&newer), Err(Error::UnsupportedModelVersion { found: 2, supported: 1 })));
    let other = json.replacen("floorwatch.maintenance.rul", "something.else", 1);
    assert!(matches!(Model::from_json(&other), Err(Error::ModelFormat(_))));
    assert!(matches!(Model::from_json("[1, 2]"), Err(Error::ModelFormat(_))));
    assert!(matches!(Model::from_json("not json"), Err(Error::ModelFormat(_))));
    assert!(matches!(Model::from_json(&json[..json.len() / 2]), Err(Error::ModelFormat(_))));

    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let nodes = value["booster"]["trees"][0]["nodes"].as_array_mut().unwrap();
    let split = nodes.iter_mut().find(|n| n["is_leaf"] == false).unwrap();
    split["split_feature"] = 100_000.into();
    let err = Model::from_json(&value.to_string()).unwrap_err();
    assert!(err.to_string().contains("malformed"), "{err}");

    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let nodes = value["booster"]["trees"][0]["nodes"].as_array_mut().unwrap();
    let split = nodes.iter_mut().find(|n| n["is_leaf"] == false).unwrap();
    split["left_child"] = 0.into();
    assert!(Model::from_json(&value.to_string()).is_err(), "a loop must be refused");

    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["feature_set"]["columns"][0] = "renamed".into();
    assert!(matches!(Model::from_json(&value.to_string()), Err(Error::ModelFormat(_))));
}

#[test]
fn given_a_cut_history_when_predicting_then_it_matches_the_every_row_prediction_at_the_cut() {
    let model = shared();
    let full = read_histories(training_csv(2).as_bytes()).unwrap();
    let every = model.predict_every_row(&full).unwrap();
    let cut = read_histories(format!("{HEADER}{}", unit_rows(2, 17)).as_bytes()).unwrap();
    let last = model.predict(&cut).unwrap();
    let at = every.iter().find(|p| p.unit == "2" && p.time == 17.0).unwrap();
    assert_eq!(&last[0], at);
}

#[test]
fn given_bad_training_input_when_training_then_it_is_refused() {
    assert!(matches!(train_csv(training_csv(6).as_bytes(), &options(1)), Err(Error::TooFewUnits { found: 1, .. })));
    let bad = TrainOptions { interval_level: 1.0, ..options(1) };
    assert!(matches!(
        train_csv(training_csv(30).as_bytes(), &bad),
        Err(Error::InvalidOption { name: "interval_level", .. })
    ));
    let unknown = TrainOptions { validation_unit_ids: Some(vec!["nope".into()]), ..options(1) };
    assert!(matches!(
        train_csv(training_csv(30).as_bytes(), &unknown),
        Err(Error::InvalidOption { name: "validation_unit_ids", .. })
    ));
    assert!(matches!(train_csv(&b""[..], &options(1)), Err(Error::EmptyInput)));
    let table = maintenance::HistoryTable::new(vec!["a".into()]).unwrap();
    assert!(matches!(TrainingSet::run_to_failure(table), Err(Error::NoRows)));
}

#[test]
fn given_a_started_unit_without_rows_when_predicting_then_it_is_named() {
    let model = shared();
    let mut table = read_histories(partial_csv().as_bytes()).unwrap();
    table.start_unit("103", 0.0).unwrap();
    assert!(matches!(
        model.predict(&table),
        Err(Error::UnitWithoutRows { unit }) if unit == "103"
    ));
}

#[test]
fn given_degenerate_but_valid_data_when_training_then_a_model_comes_out() {
    // Three one- or two-row units whose feature columns never change: only age is left.
    let csv = "unit,cycle,a,b\n1,1,5,\n2,1,5,\n2,2,5,\n3,1,5,\n";
    let options = TrainOptions { validation_units: 0, interval_min_bin_points: 1, ..options(1) };
    let (model, report) = train_csv(csv.as_bytes(), &options).unwrap();
    assert_eq!(model.feature_set().features, vec!["age".to_string()]);
    assert!(model.metrics().is_none() && report.metrics.is_none());
    let text = predict_to_string(&model, "unit,cycle,a,b\n9,1,5,\n").unwrap();
    let values: Vec<f64> = text.lines().nth(1).unwrap().split(',').skip(1).map(|v| v.parse().unwrap()).collect();
    assert!(values.iter().all(|v| v.is_finite() && *v >= 0.0), "{text}");
}

#[test]
fn given_hostile_values_when_predicting_then_a_result_comes_out_without_panic() {
    let model = shared();
    let input = format!("{HEADER}1,1,1e300,-1e300,7,\n1,2,-1e300,1e300,7,1e-300\n1,1e15,0,0,7,0\n");
    let text = predict_to_string(&model, &input).unwrap();
    assert_eq!(text.lines().count(), 2);
}
