//! The Azure-Anomaly-Detector-compatible API (univariate, v1.1): request validation with
//! the API's error codes, and detection results in its response shapes.

use detector::azure::{
    ChangePointDetectRequest, DetectRequest, ErrorCode, TimeSeriesPoint, change_point_detect, entire_detect,
    last_detect, parse_change_point_request, parse_detect_request,
};
use detector::stats::SplitMix;

fn hourly(values: &[f64]) -> Vec<TimeSeriesPoint> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| TimeSeriesPoint {
            timestamp: Some(
                chrono::DateTime::from_timestamp(1_700_000_000 + i as i64 * 3600, 0)
                    .expect("in range")
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            value: Some(*v),
        })
        .collect()
}

/// Daily pattern (period 24) with noise.
fn seasonal(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix::new(seed);
    (0..n).map(|i| 100.0 + 10.0 * (std::f64::consts::TAU * i as f64 / 24.0).sin() + rng.normal()).collect()
}

fn request(values: &[f64]) -> DetectRequest {
    DetectRequest { series: Some(hourly(values)), granularity: Some("hourly".into()), ..Default::default() }
}

#[test]
fn given_a_seasonal_series_with_a_spike_then_entire_detect_flags_it_and_finds_the_period() {
    let mut v = seasonal(24 * 14, 1);
    v[200] += 15.0;
    let r = entire_detect(&request(&v)).expect("valid request");
    assert_eq!(r.period, 24);
    assert_eq!(r.expected_values.len(), v.len());
    assert!(r.is_anomaly[200] && r.is_positive_anomaly[200] && !r.is_negative_anomaly[200]);
    assert!(r.severity[200] > 0.0 && r.severity[200] <= 1.0);
    let others = r.is_anomaly.iter().enumerate().filter(|(i, a)| **a && *i != 200).count();
    assert!(others <= 2, "{others} other points flagged");
    assert!((r.expected_values[200] - (v[200] - 15.0)).abs() < 3.0);
    assert!(r.upper_margins.iter().all(|m| *m > 0.0));
    assert_eq!(r.severity[10], 0.0);
}

#[test]
fn a_given_period_is_used_and_sensitivity_widens_or_narrows_the_margins() {
    let v = seasonal(24 * 7, 2);
    let mut req = request(&v);
    req.period = Some(24);
    req.sensitivity = Some(99);
    let tight = entire_detect(&req).expect("valid");
    req.sensitivity = Some(0);
    let wide = entire_detect(&req).expect("valid");
    assert_eq!(tight.period, 24);
    assert!(wide.upper_margins[0] > tight.upper_margins[0] * 2.0);
}

#[test]
fn max_anomaly_ratio_caps_the_flagged_points() {
    let mut v = seasonal(100, 3);
    for i in (10..100).step_by(5) {
        v[i] += 40.0;
    }
    let mut req = DetectRequest { series: Some(hourly(&v)), max_anomaly_ratio: Some(0.05), ..Default::default() };
    req.period = Some(24);
    let r = entire_detect(&req).expect("valid");
    assert_eq!(r.is_anomaly.iter().filter(|a| **a).count(), 5);
}

#[test]
fn given_a_normal_history_then_last_detect_judges_only_the_last_point() {
    let mut v = seasonal(24 * 5, 4);
    let r = last_detect(&request(&v)).expect("valid");
    assert!(!r.is_anomaly, "{r:?}");
    assert_eq!(r.period, 24);
    assert_eq!(r.suggested_window, 97);
    let last = v.len() - 1;
    v[last] -= 20.0;
    let r = last_detect(&request(&v)).expect("valid");
    assert!(r.is_anomaly && r.is_negative_anomaly && !r.is_positive_anomaly, "{r:?}");
    assert!(r.severity > 0.0);
    assert!((r.expected_value - (v[last] + 20.0)).abs() < 3.0, "{r:?}");
}

#[test]
fn given_a_level_change_then_change_point_detect_marks_it() {
    let mut rng = SplitMix::new(5);
    let v: Vec<f64> = (0..200).map(|i| if i < 120 { 10.0 } else { 20.0 } + rng.normal()).collect();
    let req = ChangePointDetectRequest {
        series: Some(hourly(&v)),
        granularity: Some("hourly".into()),
        period: Some(0),
        ..Default::default()
    };
    let r = change_point_detect(&req).expect("valid");
    assert_eq!(r.is_change_point.len(), 200);
    let marked: Vec<usize> = r.is_change_point.iter().enumerate().filter(|(_, c)| **c).map(|(i, _)| i).collect();
    assert!(marked.iter().any(|i| (118..=122).contains(i)), "{marked:?}");
    assert!(marked.len() <= 2, "{marked:?}");
    assert!(r.confidence_scores.iter().all(|c| (0.0..=1.0).contains(c)));
}

#[test]
fn responses_use_the_api_field_names() {
    let v = seasonal(48, 6);
    let json = serde_json::to_value(entire_detect(&request(&v)).expect("valid")).expect("json");
    for key in [
        "period",
        "expectedValues",
        "upperMargins",
        "lowerMargins",
        "isAnomaly",
        "isNegativeAnomaly",
        "isPositiveAnomaly",
        "severity",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
    let json = serde_json::to_value(last_detect(&request(&v)).expect("valid")).expect("json");
    for key in [
        "period",
        "suggestedWindow",
        "expectedValue",
        "upperMargin",
        "lowerMargin",
        "isAnomaly",
        "isNegativeAnomaly",
        "isPositiveAnomaly",
        "severity",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
}

#[test]
fn a_request_body_parses_from_the_documented_json() {
    let body = br#"{"series":[{"timestamp":"2018-03-01T00:00:00Z","value":32858923}],"granularity":"daily","customInterval":1,"maxAnomalyRatio":0.25,"sensitivity":95,"imputeMode":"auto"}"#;
    let req = parse_detect_request(body).expect("parses");
    assert_eq!(req.granularity.as_deref(), Some("daily"));
    assert_eq!(req.series.as_ref().map(Vec::len), Some(1));
    let body = br#"{"series":[{"timestamp":"2018-03-01T00:00:00Z","value":1}],"granularity":"daily","stableTrendWindow":5,"threshold":0.9}"#;
    assert_eq!(parse_change_point_request(body).expect("parses").stable_trend_window, Some(5));
}

fn code_of(r: Result<impl std::fmt::Debug, detector::azure::ApiError>) -> ErrorCode {
    let e = r.expect_err("must be rejected");
    assert_eq!(e.status, 400);
    assert!(!e.message.is_empty());
    e.code
}

#[test]
fn malformed_json_is_invalid_json_format_with_the_api_error_shape() {
    let e = parse_detect_request(b"{\"series\": [").expect_err("malformed");
    assert_eq!(e.code, ErrorCode::InvalidJsonFormat);
    let body = serde_json::to_value(&e).expect("json");
    assert_eq!(body["code"], "InvalidJsonFormat");
    assert!(body["message"].is_string());
    assert!(body.get("status").is_none());
    assert_eq!(code_of(parse_detect_request(b"{\"series\": \"x\"}")), ErrorCode::InvalidJsonFormat);
    assert_eq!(code_of(parse_change_point_request(b"[]")), ErrorCode::InvalidJsonFormat);
}

#[test]
fn series_problems_are_required_series_or_invalid_series() {
    assert_eq!(code_of(entire_detect(&DetectRequest::default())), ErrorCode::RequiredSeries);
    assert_eq!(code_of(entire_detect(&request(&seasonal(11, 1)))), ErrorCode::InvalidSeries);
    assert_eq!(code_of(last_detect(&request(&seasonal(8641, 1)))), ErrorCode::InvalidSeries);
    let mut req = request(&seasonal(30, 1));
    if let Some(s) = req.series.as_mut() {
        s.swap(3, 4);
    }
    assert_eq!(code_of(entire_detect(&req)), ErrorCode::InvalidSeries,);
    let mut req = request(&seasonal(30, 1));
    if let Some(s) = req.series.as_mut() {
        s[5].timestamp = s[4].timestamp.clone();
    }
    assert_eq!(code_of(entire_detect(&req)), ErrorCode::InvalidSeries);
    let mut req = request(&seasonal(30, 1));
    if let Some(s) = req.series.as_mut() {
        s[5].timestamp = Some("last tuesday".into());
    }
    assert_eq!(code_of(entire_detect(&req)), ErrorCode::InvalidSeries);
    let mut req = request(&seasonal(30, 1));
    if let Some(s) = req.series.as_mut() {
        s[5].timestamp = None;
    }
    assert_eq!(code_of(entire_detect(&req)), ErrorCode::InvalidSeries);
    let mut req = request(&seasonal(30, 1));
    if let Some(s) = req.series.as_mut() {
        s[7].value = None;
    }
    assert_eq!(code_of(entire_detect(&req)), ErrorCode::InvalidSeries);
}

#[test]
fn without_granularity_timestamps_are_optional() {
    let v = seasonal(40, 7);
    let req = DetectRequest {
        series: Some(v.iter().map(|x| TimeSeriesPoint { timestamp: None, value: Some(*x) }).collect()),
        ..Default::default()
    };
    assert_eq!(entire_detect(&req).expect("valid").is_anomaly.len(), 40);
}

#[test]
fn parameter_problems_get_their_codes() {
    let v = seasonal(48, 8);
    let with = |f: &dyn Fn(&mut DetectRequest)| {
        let mut r = request(&v);
        f(&mut r);
        r
    };
    assert_eq!(
        code_of(entire_detect(&with(&|r| r.granularity = Some("fortnightly".into())))),
        ErrorCode::InvalidGranularity
    );
    assert_eq!(code_of(entire_detect(&with(&|r| r.custom_interval = Some(0)))), ErrorCode::InvalidCustomInterval);
    assert_eq!(code_of(entire_detect(&with(&|r| r.period = Some(-1)))), ErrorCode::InvalidPeriod);
    assert_eq!(code_of(entire_detect(&with(&|r| r.period = Some(25)))), ErrorCode::InvalidPeriod);
    assert_eq!(code_of(entire_detect(&with(&|r| r.sensitivity = Some(100)))), ErrorCode::InvalidModelArgument);
    assert_eq!(code_of(last_detect(&with(&|r| r.max_anomaly_ratio = Some(0.0)))), ErrorCode::InvalidModelArgument);
    assert_eq!(code_of(entire_detect(&with(&|r| r.max_anomaly_ratio = Some(0.9)))), ErrorCode::InvalidModelArgument);
    assert_eq!(code_of(entire_detect(&with(&|r| r.impute_mode = Some("guess".into())))), ErrorCode::InvalidImputeMode);
    assert_eq!(
        code_of(entire_detect(&with(&|r| r.impute_mode = Some("fixed".into())))),
        ErrorCode::InvalidImputeFixedValue
    );
    // customInterval 2 on hourly data: two points on the same two-hour step.
    assert_eq!(code_of(entire_detect(&with(&|r| r.custom_interval = Some(2)))), ErrorCode::InvalidSeries);
}

#[test]
fn missing_points_are_imputed_for_the_model_but_not_reported() {
    let v = seasonal(24 * 6, 9);
    let mut req = request(&v);
    if let Some(s) = req.series.as_mut() {
        s.remove(50);
        s.remove(80);
    }
    for mode in ["auto", "previous", "linear", "zero", "notFill"] {
        req.impute_mode = Some(mode.into());
        let r = entire_detect(&req).expect(mode);
        assert_eq!(r.expected_values.len(), v.len() - 2, "{mode}");
    }
    req.impute_mode = Some("fixed".into());
    req.impute_fixed_value = Some(100.0);
    assert_eq!(entire_detect(&req).expect("fixed").is_anomaly.len(), v.len() - 2);
}

#[test]
fn change_point_requests_are_validated() {
    let v = seasonal(100, 10);
    let base =
        ChangePointDetectRequest { series: Some(hourly(&v)), granularity: Some("hourly".into()), ..Default::default() };
    let with = |f: &dyn Fn(&mut ChangePointDetectRequest)| {
        let mut r = base.clone();
        f(&mut r);
        r
    };
    assert_eq!(code_of(change_point_detect(&with(&|r| r.granularity = None))), ErrorCode::RequiredGranularity);
    assert_eq!(
        code_of(change_point_detect(&with(&|r| r.granularity = Some("none".into())))),
        ErrorCode::InvalidGranularity
    );
    assert_eq!(
        code_of(change_point_detect(&with(&|r| r.stable_trend_window = Some(2)))),
        ErrorCode::InvalidModelArgument
    );
    assert_eq!(
        code_of(change_point_detect(&with(&|r| r.stable_trend_window = Some(60)))),
        ErrorCode::InvalidModelArgument
    );
    assert_eq!(code_of(change_point_detect(&with(&|r| r.threshold = Some(1.5)))), ErrorCode::InvalidModelArgument);
    assert_eq!(code_of(change_point_detect(&with(&|r| r.series = None))), ErrorCode::RequiredSeries);
    assert_eq!(
        code_of(change_point_detect(&with(&|r| r.custom_interval = Some(-3)))),
        ErrorCode::InvalidCustomInterval
    );
}

#[test]
fn constant_and_huge_series_do_not_break_the_model() {
    let flat = vec![5.0; 100];
    let r = entire_detect(&request(&flat)).expect("valid");
    assert!(r.is_anomaly.iter().all(|a| !a));
    assert!(r.expected_values.iter().all(|e| e.is_finite()));
    // At the largest magnitude accepted every number of the answer, margins included,
    // stays finite; past it the point is refused by name rather than answered with
    // infinities (which JSON would carry as null).
    let huge: Vec<f64> = (0..100).map(|i| 1e15 * if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
    let r = entire_detect(&request(&huge)).expect("valid");
    for v in [&r.severity, &r.expected_values, &r.upper_margins, &r.lower_margins] {
        assert!(v.iter().all(|s| s.is_finite()), "{r:?}");
    }
    let r = last_detect(&request(&huge)).expect("valid");
    assert!([r.expected_value, r.severity, r.upper_margin, r.lower_margin].iter().all(|v| v.is_finite()), "{r:?}");
    let mut beyond = huge.clone();
    beyond[40] = 1e300;
    let e = entire_detect(&request(&beyond)).expect_err("1e300 is no reading");
    assert_eq!(e.code, ErrorCode::InvalidSeries);
    assert!(e.message.contains("point 40"), "{}", e.message);
    assert_eq!(last_detect(&request(&beyond)).expect_err("refused").code, ErrorCode::InvalidSeries);
}
