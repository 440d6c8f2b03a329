//! Hostile CSV for `floorwatch detect`, generated: whatever bytes arrive (invalid UTF-8,
//! NUL, quotes left open, ragged rows, huge fields), scoring answers with a typed error
//! naming the line or with one score in [0, 1] per row, never a panic; values of any
//! magnitude are scored, and NaN or infinities are refused by line.
//!
//! `PROPTEST_CASES=20000 cargo test -p detector --test fuzz_csv` runs them longer.

use detector::{Config, CsvError, detect_csv};
use proptest::prelude::*;

fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (-1e4f64..1e4).prop_map(|v| v.to_string()),
        1 => Just("1e300".to_owned()),
        1 => Just("-1e300".to_owned()),
        1 => Just("1e-300".to_owned()),
        1 => Just("NaN".to_owned()),
        1 => Just("inf".to_owned()),
        1 => Just("-infinity".to_owned()),
        1 => Just(String::new()),
        1 => Just("1\u{0}2".to_owned()),
        1 => Just("\"12\"".to_owned()),
        1 => Just("\"unterminated".to_owned()),
        1 => "[ -~]{0,12}",
        1 => Just("9".repeat(5_000)),
    ]
}

fn time(i: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        8 => Just(format!("2026-01-01T00:{:02}:{:02}Z", (i / 60) % 60, i % 60)),
        1 => Just((1_767_225_600 + i as i64).to_string()),
        1 => Just("2026-13-45T99:99:99Z".to_owned()),
        1 => Just("-99999999999999999999".to_owned()),
        1 => Just("2026-01-01T00:00:00Z".to_owned()),
        1 => "[ -~]{0,24}",
    ]
}

fn document() -> impl Strategy<Value = String> {
    let header = prop_oneof![
        6 => Just("timestamp,value".to_owned()),
        1 => Just("\u{feff}Timestamp , VALUE".to_owned()),
        1 => Just("value,timestamp,extra".to_owned()),
        1 => Just("time,reading".to_owned()),
        1 => Just(String::new()),
    ];
    let rows = (0usize..200).prop_flat_map(|n| (0..n).map(|i| (time(i), cell())).collect::<Vec<_>>());
    (header, rows, prop::sample::select(vec!["\n", "\r\n"])).prop_map(|(h, rows, eol)| {
        let mut s = h;
        for (t, v) in rows {
            s.push_str(eol);
            s.push_str(&t);
            s.push(',');
            s.push_str(&v);
        }
        s
    })
}

fn check(input: &[u8]) -> Result<(), TestCaseError> {
    let mut out = Vec::new();
    match detect_csv(input, &mut out, &Config::default()) {
        Ok(summary) => {
            let text = String::from_utf8(out).expect("the output is UTF-8: fields are written back as read");
            let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(text.as_bytes());
            let mut rows = 0u64;
            for record in reader.records() {
                let record = record.expect("the output is well-formed CSV");
                let score: f64 = record[2].parse().expect("a score is a number");
                prop_assert!((0.0..=1.0).contains(&score), "score {score}");
                rows += 1;
            }
            prop_assert_eq!(rows, summary.rows);
            prop_assert!(summary.max_score.is_finite() && (0.0..=1.0).contains(&summary.max_score));
        }
        Err(CsvError::Write(e)) => prop_assert!(false, "writing to memory failed: {e}"),
        Err(_) => {}
    }
    Ok(())
}

proptest! {
    // PROPTEST_CASES raises the count (`cargo xtask chaos` does).
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(128), ..ProptestConfig::default() })]

    #[test]
    fn csv_shaped_input_is_scored_or_refused_by_line(doc in document()) {
        check(doc.as_bytes())?;
    }

    #[test]
    fn any_bytes_are_scored_or_refused_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        check(&bytes)?;
    }

    #[test]
    fn damaged_input_is_scored_or_refused(doc in document(), damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = doc.into_bytes();
        if !bytes.is_empty() {
            for (at, b) in damage {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
        }
        check(&bytes)?;
    }
}

#[test]
fn non_finite_values_are_refused_by_line_and_huge_ones_scored() {
    let mut out = Vec::new();
    let err = detect_csv("timestamp,value\n1,1\n2,NaN\n".as_bytes(), &mut out, &Config::default()).unwrap_err();
    assert!(matches!(err, CsvError::NonFinite { line: 3, .. }), "{err}");
    let mut out = Vec::new();
    let rows: String = (0..50).map(|i| format!("{i},{}\n", if i % 2 == 0 { "1e300" } else { "-1e300" })).collect();
    let s = detect_csv(format!("timestamp,value\n{rows}").as_bytes(), &mut out, &Config::default()).unwrap();
    assert_eq!(s.rows, 50);
    let mut out = Vec::new();
    let err = detect_csv("timestamp,value\n1,1\n2,\"1\u{0}\"\n".as_bytes(), &mut out, &Config::default()).unwrap_err();
    assert!(matches!(err, CsvError::BadValue { line: 3, .. }), "{err}");
}
