//! The offline CSV path: rows in, the same rows with a score out; clear errors naming the line.

use detector::{Config, CsvError, detect_csv};

fn run(input: &str) -> Result<(String, detector::Summary), CsvError> {
    let mut out = Vec::new();
    let summary = detect_csv(input.as_bytes(), &mut out, &Config::default())?;
    Ok((String::from_utf8(out).expect("utf-8 output"), summary))
}

fn series(n: usize, spike_at: Option<usize>) -> String {
    let mut rng = detector::stats::SplitMix::new(3);
    let mut s = String::from("timestamp,value\n");
    for i in 0..n {
        let v = 20.0 + rng.normal() + if Some(i) == spike_at { 15.0 } else { 0.0 };
        s.push_str(&format!("{},{v:.4}\n", 1_700_000_000 + i as i64 * 60));
    }
    s
}

#[test]
fn given_a_series_then_every_row_comes_back_in_order_with_a_score_in_range() {
    let input = series(600, Some(400));
    let (out, summary) = run(&input).expect("valid input");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("timestamp,value,anomaly_score"));
    let rows: Vec<Vec<String>> = lines.map(|l| l.split(',').map(str::to_owned).collect()).collect();
    assert_eq!(rows.len(), 600);
    assert_eq!(summary.rows, 600);
    for (row, inp) in rows.iter().zip(input.lines().skip(1)) {
        let mut f = inp.split(',');
        assert_eq!(row[0], f.next().expect("ts"));
        assert_eq!(row[1], f.next().expect("value"));
        let s: f64 = row[2].parse().expect("numeric score");
        assert!((0.0..=1.0).contains(&s));
    }
    let spike: f64 = rows[400][2].parse().expect("score");
    assert!(spike > 0.6, "spike scored {spike}");
    let quiet = rows[300..400].iter().map(|r| r[2].parse::<f64>().expect("score")).fold(0.0, f64::max);
    assert!(quiet < 0.5, "clean rows scored up to {quiet}");
}

#[test]
fn scores_use_only_earlier_rows() {
    let input = series(400, Some(300));
    let (full, _) = run(&input).expect("valid");
    let truncated: String = input.lines().take(1 + 350).map(|l| format!("{l}\n")).collect();
    let (part, _) = run(&truncated).expect("valid");
    let full: Vec<&str> = full.lines().take(1 + 350).collect();
    let part: Vec<&str> = part.lines().collect();
    assert_eq!(full, part);
}

#[test]
fn iso_timestamps_repeats_and_backward_steps_are_accepted() {
    let input = "timestamp,value\n\
        2014-04-01 00:00:00,1.5\n\
        2014-04-01T00:05:00Z,1.6\n\
        2014-04-01T00:05:00Z,1.7\n\
        2014-04-01T00:02:00+00:00,1.4\n\
        1396311000,1.5\n\
        1396311000000,1.5\n";
    let (out, summary) = run(input).expect("valid");
    assert_eq!(summary.rows, 6);
    assert_eq!(summary.repeated_timestamps, 2);
    assert_eq!(summary.backwards_timestamps, 1);
    assert!(out.contains("2014-04-01 00:00:00,1.5,"));
}

#[test]
fn extra_columns_and_a_byte_order_mark_are_tolerated() {
    let input = "\u{feff}timestamp,value,label\n1700000000,1.0,0\n1700000060,1.1,1\n";
    let (out, _) = run(input).expect("valid");
    assert_eq!(out.lines().count(), 3);
    assert!(out.lines().nth(2).expect("row").starts_with("1700000060,1.1,"));
}

fn expect_err(input: &str) -> CsvError {
    run(input).expect_err("input must be rejected")
}

#[test]
fn an_empty_file_is_rejected() {
    assert!(matches!(expect_err(""), CsvError::Empty));
}

#[test]
fn a_missing_header_is_rejected_naming_what_was_found() {
    let e = expect_err("1700000000,1.0\n1700000060,1.1\n");
    assert!(matches!(e, CsvError::MissingHeader { line: 1, .. }), "{e:?}");
    assert!(e.to_string().contains("1700000000,1.0"), "{e}");
}

#[test]
fn a_header_without_rows_is_rejected() {
    assert!(matches!(expect_err("timestamp,value\n"), CsvError::NoRows));
}

#[test]
fn a_non_numeric_value_is_rejected_with_its_line() {
    let e = expect_err("timestamp,value\n1700000000,1.0\n1700000060,abc\n");
    assert!(matches!(&e, CsvError::BadValue { line: 3, text } if text == "abc"), "{e:?}");
    assert!(e.to_string().starts_with("line 3:"), "{e}");
}

#[test]
fn nan_and_infinity_are_rejected_with_their_line() {
    for bad in ["NaN", "inf", "-inf"] {
        let e = expect_err(&format!("timestamp,value\n1700000000,1.0\n1700000060,{bad}\n"));
        assert!(matches!(e, CsvError::NonFinite { line: 3, .. }), "{bad}: {e:?}");
    }
}

#[test]
fn a_bad_timestamp_is_rejected_with_its_line() {
    let e = expect_err("timestamp,value\n1700000000,1.0\nnot-a-time,1.0\n");
    assert!(matches!(e, CsvError::BadTimestamp { line: 3, .. }), "{e:?}");
}

#[test]
fn a_short_row_is_rejected_with_its_line() {
    let e = expect_err("timestamp,value\n1700000000,1.0\n1700000060\n");
    assert!(matches!(e, CsvError::FieldCount { line: 3, expected: 2, found: 1 }), "{e:?}");
}

#[test]
fn malformed_utf8_is_rejected_as_malformed_csv() {
    let mut out = Vec::new();
    let input: &[u8] = b"timestamp,value\n1700000000,\xff\xfe\n";
    let e = detect_csv(input, &mut out, &Config::default()).expect_err("bad bytes");
    assert!(matches!(e, CsvError::Malformed { line: 2, .. }), "{e:?}");
}

#[test]
fn an_invalid_detector_config_is_reported() {
    let cfg = Config { band_score: 2.0, ..Config::default() };
    let e = detect_csv("timestamp,value\n1,1\n".as_bytes(), Vec::new(), &cfg).expect_err("bad config");
    assert!(matches!(e, CsvError::Config(_)), "{e:?}");
}

#[test]
fn a_failing_writer_is_reported() {
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::Error::other("disk full"))
        }
    }
    let e = detect_csv(series(50, None).as_bytes(), Broken, &Config::default()).expect_err("broken output");
    assert!(matches!(e, CsvError::Write(_)), "{e:?}");
}

/// A machine of four sensors that move together with its load (which steps every ten
/// minutes), sampled each second; sensor `c` shifts alone from row `shift_at` if given.
fn machine_csv(rows: usize, shift_at: Option<usize>, gap_in_b: bool) -> String {
    let mut rng = detector::stats::SplitMix::new(8);
    let gains = [10.0, 25.0, -8.0, 40.0];
    let mut s = String::from("timestamp,a,b,c,d\n");
    let mut load = 0.5;
    for i in 0..rows {
        if i % 600 == 0 {
            load = rng.range(0.2, 1.0);
        }
        s.push_str(&format!("{}", 1_700_000_000_000i64 + i as i64 * 1000));
        for (k, g) in gains.iter().enumerate() {
            let mut v = 50.0 + g * load + 0.3 * rng.normal();
            if k == 2 && shift_at.is_some_and(|at| i >= at) {
                v += 6.0;
            }
            if k == 1 && gap_in_b && i % 97 == 0 {
                s.push(',');
                continue;
            }
            s.push_str(&format!(",{v:.3}"));
        }
        s.push('\n');
    }
    s
}

#[test]
fn a_machine_csv_gets_a_row_score_and_a_score_per_sensor() {
    let input = machine_csv(12_000, Some(11_000), true);
    let (out, summary) = run(&input).expect("a machine's CSV");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("timestamp,a,b,c,d,anomaly_score,a_score,b_score,c_score,d_score"));
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|f| if f.is_empty() { f64::NAN } else { f.parse().expect("number") }).collect())
        .collect();
    assert_eq!((rows.len(), summary.rows), (12_000, 12_000));
    // Changes of load move every sensor and raise nothing once the machine is learned.
    let calm = rows[6_000..11_000].iter().filter(|r| r[5] >= 0.6).count();
    assert_eq!(calm, 0, "{calm} alarms on changes of load");
    // Sensor c leaving the others is its alarm, at its onset.
    let alarm = rows[11_000..11_060].iter().position(|r| r[8] >= 0.6).expect("the shift of c is flagged");
    assert!(alarm <= 10, "flagged after {alarm} s");
    assert!(rows[11_000 + alarm][5] >= rows[11_000 + alarm][8], "the row's score is its highest sensor's");
}

#[test]
fn a_machine_csv_is_scored_with_earlier_rows_only() {
    let input = machine_csv(3_000, Some(2_500), false);
    let (full, _) = run(&input).expect("valid");
    let truncated: String = input.lines().take(1 + 2_700).map(|l| format!("{l}\n")).collect();
    let (part, _) = run(&truncated).expect("valid");
    assert_eq!(full.lines().take(1 + 2_700).collect::<Vec<_>>(), part.lines().collect::<Vec<_>>());
}

#[test]
fn a_machine_csv_with_a_bad_cell_names_its_line() {
    let input = "timestamp,a,b\n1700000000,1.0,2.0\n1700000001,1.0,oops\n";
    match run(input) {
        Err(CsvError::BadValue { line, text }) => assert_eq!((line, text.as_str()), (3, "oops")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(run("timestamp,a\n1700000000,inf\n"), Err(CsvError::NonFinite { .. })));
    assert!(matches!(run("timestamp\n1700000000\n"), Err(CsvError::MissingHeader { .. })));
}
