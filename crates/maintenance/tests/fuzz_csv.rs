//! Hostile run-to-failure CSV for `floorwatch train` and `floorwatch predict`, generated:
//! whatever bytes arrive (invalid UTF-8, NUL, ragged rows, huge unit names, NaN, ±inf,
//! 1e300, cycles going backwards), reading answers with a typed error or a table, and
//! prediction with a typed error or one row per unit whose figures are finite and at
//! least 0 — never a panic.
//!
//! `PROPTEST_CASES=5000 cargo test -p maintenance --test fuzz_csv` runs them longer.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use maintenance::{BoosterParams, FeatureConfig, Model, TrainOptions, predict_csv, read_histories, train_csv};
use proptest::prelude::*;

/// A small model trained once on a clean generated fleet: wear rises towards failure.
fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let mut csv = "unit,cycle,wear,temp\n".to_owned();
        for u in 1..=24u32 {
            let life = 40 + (u * 37) % 41;
            for c in 1..=life {
                let x = f64::from(c) / f64::from(life);
                csv.push_str(&format!(
                    "U{u},{c},{:.4},{:.3}\n",
                    1.0 + 3.0 * x * x,
                    50.0 + f64::from((u * c) % 7) * 0.1
                ));
            }
        }
        let options = TrainOptions {
            rul_cap: Some(40.0),
            seed: 1,
            validation_units: 4,
            calibration_folds: 3,
            interval_min_bin_points: 40,
            truncations_per_unit: 3,
            min_history_rows: 10,
            created_at_ms: 1_700_000_000_000,
            features: FeatureConfig { windows: vec![3.0, 6.0], baseline_window: 5.0 },
            booster: BoosterParams { iterations: 20, learning_rate: 0.2, nbins: 32, ..BoosterParams::default() },
            ..TrainOptions::default()
        };
        train_csv(csv.as_bytes(), &options).unwrap().0
    })
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (-100.0f64..100.0).prop_map(|v| format!("{v:.3}")),
        1 => Just("1e300".to_owned()),
        1 => Just("-1e300".to_owned()),
        1 => Just("NaN".to_owned()),
        1 => Just("inf".to_owned()),
        1 => Just("-inf".to_owned()),
        1 => Just("NA".to_owned()),
        1 => Just(String::new()),
        1 => Just("1\u{0}".to_owned()),
        1 => "[ -~]{0,10}",
    ]
}

fn unit() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (1u32..6).prop_map(|u| format!("U{u}")),
        1 => Just(String::new()),
        1 => Just("\u{0}".to_owned()),
        1 => Just("u".repeat(5_000)),
        1 => Just("\"quoted, unit\"".to_owned()),
    ]
}

fn cycle(i: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        8 => Just((i + 1).to_string()),
        1 => Just("0".to_owned()),
        1 => Just("-5".to_owned()),
        1 => Just("1e300".to_owned()),
        1 => number(),
    ]
}

fn document() -> impl Strategy<Value = String> {
    let header = prop_oneof![
        8 => Just("unit,cycle,wear,temp".to_owned()),
        1 => Just("unit,cycle,wear,wear".to_owned()),
        1 => Just("cycle,unit".to_owned()),
        1 => Just("unit,,wear".to_owned()),
        1 => Just(String::new()),
    ];
    let rows = (0usize..120).prop_flat_map(|n| {
        (0..n).map(|i| (unit(), cycle(i % 60), number(), number(), prop::bool::weighted(0.03))).collect::<Vec<_>>()
    });
    (header, rows).prop_map(|(h, rows)| {
        let mut s = h;
        for (u, c, w, t, ragged) in rows {
            s.push('\n');
            if ragged {
                s.push_str(&format!("{u},{c}"));
            } else {
                s.push_str(&format!("{u},{c},{w},{t}"));
            }
        }
        s
    })
}

fn check(input: &[u8]) -> Result<(), TestCaseError> {
    let _ = read_histories(input);
    let mut out = Vec::new();
    if predict_csv(model(), input, &mut out).is_ok() {
        let text = String::from_utf8(out).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        for record in reader.records() {
            let record = record.unwrap();
            for field in 1..4 {
                let v: f64 = record[field].parse().unwrap();
                prop_assert!(v.is_finite() && v >= 0.0, "{:?}", record);
            }
            let (p, lo, hi): (f64, f64, f64) =
                (record[1].parse().unwrap(), record[2].parse().unwrap(), record[3].parse().unwrap());
            prop_assert!(lo <= p && p <= hi, "interval does not hold its prediction: {:?}", record);
        }
    }
    Ok(())
}

proptest! {
    // PROPTEST_CASES raises the count (`cargo xtask chaos` does).
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(96), ..ProptestConfig::default() })]

    #[test]
    fn csv_shaped_input_is_predicted_or_refused(doc in document()) {
        check(doc.as_bytes())?;
    }

    #[test]
    fn any_bytes_are_predicted_or_refused_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        check(&bytes)?;
    }
}
