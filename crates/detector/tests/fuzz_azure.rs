//! Hostile request bodies for the Anomaly Detector routes, generated: whatever arrives, the
//! parsers and the three detections answer with a response or a 400 with its error code,
//! never a panic; every number a response carries is finite (JSON has no NaN or infinity,
//! so a non-finite number would reach the caller as `null`), and its lists are as long as
//! the series.
//!
//! `PROPTEST_CASES=20000 cargo test -p detector --test fuzz_azure` runs them longer.

use detector::azure::{
    ChangePointDetectRequest, DetectRequest, TimeSeriesPoint, change_point_detect, entire_detect, last_detect,
    parse_change_point_request, parse_detect_request,
};
use proptest::prelude::*;

/// Finite values of any magnitude: accepted by validation, so they reach the detection.
fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -1e3f64..1e3,
        1 => Just(1e300),
        1 => Just(-1e300),
        1 => Just(1e-300),
        1 => Just(f64::MAX),
        1 => Just(f64::MIN_POSITIVE),
        2 => any::<u64>().prop_map(f64::from_bits).prop_filter("finite", |v| v.is_finite()),
    ]
}

/// Anything a body can hold where a number belongs, missing included.
fn value() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        8 => finite().prop_map(Some),
        1 => Just(None),
        1 => Just(Some(f64::NAN)),
        1 => Just(Some(f64::INFINITY)),
        1 => any::<u64>().prop_map(|b| Some(f64::from_bits(b))),
    ]
}

fn timestamp(i: usize) -> impl Strategy<Value = Option<String>> {
    let minute = format!("2026-01-01T{:02}:{:02}:00Z", (i / 60) % 24, i % 60);
    prop_oneof![
        8 => Just(Some(minute)),
        1 => Just(None),
        1 => Just(Some("not a time".to_owned())),
        1 => Just(Some("2026-01-01T00:00:00\0Z".to_owned())),
        1 => Just(Some("9999-12-31T23:59:59Z".to_owned())),
        1 => Just(Some("0000-01-01T00:00:00Z".to_owned())),
        1 => Just(Some("x".repeat(10_000))),
        1 => ".{0,40}".prop_map(Some),
    ]
}

fn series() -> impl Strategy<Value = Option<Vec<TimeSeriesPoint>>> {
    // Most series pass validation (finite values, minute timestamps), so that what is
    // fuzzed is the detection itself; the rest carry hostile points anywhere.
    let point = |i: usize, hostile: bool| {
        let value = if hostile { value().boxed() } else { finite().prop_map(Some).boxed() };
        let ts = if hostile {
            timestamp(i).boxed()
        } else {
            Just(Some(format!("2026-01-01T{:02}:{:02}:00Z", (i / 60) % 24, i % 60))).boxed()
        };
        (ts, value).prop_map(|(timestamp, value)| TimeSeriesPoint { timestamp, value })
    };
    let points = (0usize..400, prop::bool::weighted(0.2))
        .prop_flat_map(move |(n, hostile)| (0..n).map(|i| point(i, hostile)).collect::<Vec<_>>());
    prop_oneof![10 => points.prop_map(Some), 1 => Just(None)]
}

fn granularity() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        prop::sample::select(vec![
            "yearly",
            "monthly",
            "weekly",
            "daily",
            "hourly",
            "minutely",
            "secondly",
            "microsecond",
            "none"
        ])
        .prop_map(|g| Some(g.to_owned())),
        ".{0,12}".prop_map(Some),
    ]
}

fn small_or_hostile() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![Just(None), (-5i64..2000).prop_map(Some), any::<i64>().prop_map(Some)]
}

fn ratio_or_hostile() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![Just(None), (0.0f64..1.0).prop_map(Some), value()]
}

fn detect_request() -> impl Strategy<Value = DetectRequest> {
    (
        series(),
        granularity(),
        small_or_hostile(),
        small_or_hostile(),
        ratio_or_hostile(),
        small_or_hostile(),
        prop::option::of(prop::sample::select(vec!["auto", "linear", "previous", "zero", "notFill", "fixed", "bogus"])),
        value(),
    )
        .prop_map(
            |(series, granularity, custom_interval, period, max_anomaly_ratio, sensitivity, impute, fixed)| {
                DetectRequest {
                    series,
                    granularity,
                    custom_interval,
                    period,
                    max_anomaly_ratio,
                    sensitivity,
                    impute_mode: impute.map(str::to_owned),
                    impute_fixed_value: fixed,
                }
            },
        )
}

fn change_point_request() -> impl Strategy<Value = ChangePointDetectRequest> {
    (series(), granularity(), small_or_hostile(), small_or_hostile(), small_or_hostile(), ratio_or_hostile()).prop_map(
        |(series, granularity, custom_interval, period, stable_trend_window, threshold)| ChangePointDetectRequest {
            series,
            granularity,
            custom_interval,
            period,
            stable_trend_window,
            threshold,
        },
    )
}

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

proptest! {
    // PROPTEST_CASES raises the count (`cargo xtask chaos` does).
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64), ..ProptestConfig::default() })]

    #[test]
    fn entire_detection_answers_finite_figures_or_a_400(req in detect_request()) {
        match entire_detect(&req) {
            Ok(r) => {
                let n = req.series.as_ref().map_or(0, Vec::len);
                prop_assert!([r.expected_values.len(), r.upper_margins.len(), r.lower_margins.len(), r.is_anomaly.len(), r.severity.len()]
                    .iter().all(|&l| l == n));
                prop_assert!(all_finite(&r.expected_values) && all_finite(&r.upper_margins) && all_finite(&r.lower_margins) && all_finite(&r.severity),
                    "non-finite figures in {:?}", r);
            }
            Err(e) => prop_assert_eq!(e.status, 400),
        }
    }

    #[test]
    fn last_point_detection_answers_finite_figures_or_a_400(req in detect_request()) {
        match last_detect(&req) {
            Ok(r) => prop_assert!(all_finite(&[r.expected_value, r.upper_margin, r.lower_margin, r.severity]), "{:?}", r),
            Err(e) => prop_assert_eq!(e.status, 400),
        }
    }

    #[test]
    fn change_point_detection_answers_finite_figures_or_a_400(req in change_point_request()) {
        match change_point_detect(&req) {
            Ok(r) => {
                let n = req.series.as_ref().map_or(0, Vec::len);
                prop_assert_eq!(r.is_change_point.len(), n);
                prop_assert_eq!(r.confidence_scores.len(), n);
                prop_assert!(all_finite(&r.confidence_scores), "{:?}", r.confidence_scores);
            }
            Err(e) => prop_assert_eq!(e.status, 400),
        }
    }

    #[test]
    fn any_bytes_parse_or_are_refused_as_bad_json(body in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = parse_detect_request(&body) { prop_assert_eq!(e.status, 400); }
        if let Err(e) = parse_change_point_request(&body) { prop_assert_eq!(e.status, 400); }
    }

    #[test]
    fn json_shaped_bodies_with_hostile_fields_parse_or_are_refused(
        series_json in prop_oneof![
            Just("[]".to_owned()),
            Just("null".to_owned()),
            Just("[{\"value\":1e999}]".to_owned()),
            Just("[{\"timestamp\":\"\\u0000\",\"value\":1}]".to_owned()),
            Just("[{\"value\":\"1\"}]".to_owned()),
            Just(format!("[{}]", vec!["{\"value\":1}"; 9000].join(","))),
            "[\\[\\]{}\",:0-9a-z\\\\]{0,64}",
        ],
        granularity in prop_oneof![Just("\"minutely\"".to_owned()), Just("7".to_owned()), Just("\"\\ud800\"".to_owned())],
    ) {
        let body = format!("{{\"series\":{series_json},\"granularity\":{granularity},\"period\":99999999999999999999}}");
        if let Ok(req) = parse_detect_request(body.as_bytes())
            && let Err(e) = entire_detect(&req)
        {
            prop_assert_eq!(e.status, 400);
        }
        // Invalid UTF-8 inside a string.
        let mut bytes = body.clone().into_bytes();
        bytes.extend_from_slice(b"\xff\xfe");
        if let Err(e) = parse_detect_request(&bytes) { prop_assert_eq!(e.status, 400); }
    }
}
