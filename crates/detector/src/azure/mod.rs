//! An API compatible with Azure AI Anomaly Detector's univariate REST API, version v1.1:
//! entire-series detect, last-point detect and change-point detect, with its request and
//! response shapes, limits and error format.
//!
//! Followed documents: the v1.1 OpenAPI definition in Azure/azure-rest-api-specs,
//! `specification/cognitiveservices/data-plane/AnomalyDetector/stable/v1.1/UnivariateAnomalyDetector.json`
//! (with its TypeSpec/CADL models `stable/v1.1/cadl/univariate/models.cadl` and the
//! `examples/ChangePointDetect.json` example), and the service documentation
//! "Best practices for using the Anomaly Detector univariate API" (a series holds 12 to
//! 8640 points; `customInterval` multiplies the granularity; four periods plus one point
//! are recommended).
//!
//! Each entry point is a plain function from request to response or [`ApiError`] (which
//! carries the HTTP status, the error code and a message), so an HTTP route is one line:
//! parse the body with [`parse_detect_request`] / [`parse_change_point_request`], call the
//! function, serialize the result (or `ApiError` with its `status` and an
//! `x-ms-error-code` header of `code`).
//!
//! Where the documents leave a choice open, this implementation decides as follows:
//! * `sensitivity` defaults to 95; it maps to a margin of `3.5 + 6.5 × (99 − s) / 99`
//!   robust standard deviations (99 → 3.5, 0 → 10). Points that the spectral residual
//!   finds salient (ten times their local saliency) need 85 % of that margin. A point outside `expected ± margin` is an
//!   anomaly (before the `maxAnomalyRatio` cap), so `upperMargins`/`lowerMargins` are the
//!   distances to the boundary at the requested sensitivity.
//! * `maxAnomalyRatio` must lie in (0, 0.5] and defaults to 0.25: at most that share of
//!   points is flagged, the most severe first.
//! * `period` must lie in 0 ..= half the points (0: no seasonality); absent, it is detected.
//! * Missing points (timestamps skipped on the granularity grid) are imputed for the
//!   model (`auto` = `linear`) and not reported; `notFill` models the points as given.
//! * Change points: `threshold` (default 0.9) is the minimum confidence of a change point,
//!   `stableTrendWindow` (default 10, at least 3, at most a quarter of the points) the
//!   window on each side; a change point is the strongest point within its window.
//! * `severity` is the detector's calibrated score: `-log10(p) / 10` in [0, 1], p the
//!   probability of so large a deviation under the fitted model; 0 for normal points.

pub mod batch;

use serde::{Deserialize, Serialize};

use crate::config::SURPRISE_SCALE;
use crate::stats::surprise_two_sided;
use crate::timestamp::parse_timestamp_ms;

/// Fewest points a series may hold.
pub const MIN_POINTS: usize = 12;
/// Most points a series may hold.
pub const MAX_POINTS: usize = 8640;
/// Spectral-residual score from which a point counts as salient.
const SALIENT: f64 = 10.0;

/// Error codes of the API (`AnomalyDetectorErrorCodes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    InvalidCustomInterval,
    BadArgument,
    InvalidGranularity,
    InvalidPeriod,
    InvalidModelArgument,
    InvalidSeries,
    InvalidJsonFormat,
    RequiredGranularity,
    RequiredSeries,
    InvalidImputeMode,
    InvalidImputeFixedValue,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidCustomInterval => "InvalidCustomInterval",
            ErrorCode::BadArgument => "BadArgument",
            ErrorCode::InvalidGranularity => "InvalidGranularity",
            ErrorCode::InvalidPeriod => "InvalidPeriod",
            ErrorCode::InvalidModelArgument => "InvalidModelArgument",
            ErrorCode::InvalidSeries => "InvalidSeries",
            ErrorCode::InvalidJsonFormat => "InvalidJsonFormat",
            ErrorCode::RequiredGranularity => "RequiredGranularity",
            ErrorCode::RequiredSeries => "RequiredSeries",
            ErrorCode::InvalidImputeMode => "InvalidImputeMode",
            ErrorCode::InvalidImputeFixedValue => "InvalidImputeFixedValue",
        }
    }
}

/// An error response: serializes as the API's `{ "code": "...", "message": "..." }`;
/// `status` is the HTTP status to send (and `code` also goes in `x-ms-error-code`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    #[serde(skip, default = "bad_request")]
    pub status: u16,
    pub code: ErrorCode,
    pub message: String,
}

fn bad_request() -> u16 {
    400
}

impl ApiError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { status: 400, code, message: message.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TimeSeriesPoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    pub value: Option<f64>,
}

/// Request of entire-series and last-point detection (`DetectRequest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DetectRequest {
    pub series: Option<Vec<TimeSeriesPoint>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granularity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_anomaly_ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impute_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impute_fixed_value: Option<f64>,
}

/// Request of change-point detection (`ChangePointDetectRequest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ChangePointDetectRequest {
    pub series: Option<Vec<TimeSeriesPoint>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granularity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_trend_window: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

/// Response of entire-series detection (`EntireDetectResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntireDetectResponse {
    pub period: i32,
    pub expected_values: Vec<f64>,
    pub upper_margins: Vec<f64>,
    pub lower_margins: Vec<f64>,
    pub is_anomaly: Vec<bool>,
    pub is_negative_anomaly: Vec<bool>,
    pub is_positive_anomaly: Vec<bool>,
    pub severity: Vec<f64>,
}

/// Response of last-point detection (`LastDetectResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastDetectResponse {
    pub period: i32,
    pub suggested_window: i32,
    pub expected_value: f64,
    pub upper_margin: f64,
    pub lower_margin: f64,
    pub is_anomaly: bool,
    pub is_negative_anomaly: bool,
    pub is_positive_anomaly: bool,
    pub severity: f64,
}

/// Response of change-point detection (`ChangePointDetectResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangePointDetectResponse {
    pub period: i32,
    pub is_change_point: Vec<bool>,
    pub confidence_scores: Vec<f64>,
}

/// Parses a detect request body; malformed JSON is `InvalidJsonFormat`.
pub fn parse_detect_request(body: &[u8]) -> Result<DetectRequest, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJsonFormat,
            format!("the request body is not valid JSON for this operation: {e}"),
        )
    })
}

/// Parses a change-point request body; malformed JSON is `InvalidJsonFormat`.
pub fn parse_change_point_request(body: &[u8]) -> Result<ChangePointDetectRequest, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJsonFormat,
            format!("the request body is not valid JSON for this operation: {e}"),
        )
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Granularity {
    Yearly,
    Monthly,
    Weekly,
    Daily,
    Hourly,
    Minutely,
    Secondly,
    Microsecond,
    None,
}

impl Granularity {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "yearly" => Granularity::Yearly,
            "monthly" => Granularity::Monthly,
            "weekly" => Granularity::Weekly,
            "daily" => Granularity::Daily,
            "hourly" => Granularity::Hourly,
            "minutely" => Granularity::Minutely,
            "secondly" => Granularity::Secondly,
            "microsecond" => Granularity::Microsecond,
            "none" => Granularity::None,
            _ => return None,
        })
    }

    /// Length of one step in ms; months and years use their mean length, and the grid
    /// position is rounded, so calendar irregularities do not count as missing points.
    fn step_ms(self) -> Option<f64> {
        Some(match self {
            Granularity::Yearly => 365.2425 * 86_400_000.0,
            Granularity::Monthly => 30.436_875 * 86_400_000.0,
            Granularity::Weekly => 7.0 * 86_400_000.0,
            Granularity::Daily => 86_400_000.0,
            Granularity::Hourly => 3_600_000.0,
            Granularity::Minutely => 60_000.0,
            Granularity::Secondly => 1000.0,
            Granularity::Microsecond | Granularity::None => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Impute {
    Previous,
    Linear,
    Fixed(f64),
    Zero,
    NotFill,
}

/// A validated series, laid on its regular grid.
struct Series {
    /// Values on the grid, missing points imputed.
    grid: Vec<f64>,
    /// Grid index of each input point.
    index: Vec<usize>,
}

fn validate_points(series: &Option<Vec<TimeSeriesPoint>>) -> Result<&[TimeSeriesPoint], ApiError> {
    let Some(points) = series else {
        return Err(ApiError::new(ErrorCode::RequiredSeries, "the request must contain a series"));
    };
    if points.len() < MIN_POINTS {
        return Err(ApiError::new(
            ErrorCode::InvalidSeries,
            format!("the series must contain at least {MIN_POINTS} points, got {}", points.len()),
        ));
    }
    if points.len() > MAX_POINTS {
        return Err(ApiError::new(
            ErrorCode::InvalidSeries,
            format!("the series must contain at most {MAX_POINTS} points, got {}", points.len()),
        ));
    }
    for (i, p) in points.iter().enumerate() {
        match p.value {
            None => {
                return Err(ApiError::new(ErrorCode::InvalidSeries, format!("point {i} has no value")));
            }
            Some(v) if !v.is_finite() => {
                return Err(ApiError::new(ErrorCode::InvalidSeries, format!("point {i} has a non-finite value")));
            }
            // Beyond this the spreads and margins overflow to infinity, which JSON cannot
            // carry; no sensor measures that far, so such a value is refused, not scored.
            Some(v) if v.abs() > crate::MAX_READING_MAGNITUDE => {
                return Err(ApiError::new(
                    ErrorCode::InvalidSeries,
                    format!("point {i} has the value {v:e}, beyond ±{:e}", crate::MAX_READING_MAGNITUDE),
                ));
            }
            _ => {}
        }
    }
    Ok(points)
}

fn parse_granularity(text: Option<&str>, required: bool) -> Result<Granularity, ApiError> {
    match text {
        None if required => Err(ApiError::new(ErrorCode::RequiredGranularity, "granularity is required")),
        None => Ok(Granularity::None),
        Some(t) => Granularity::parse(t).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidGranularity,
                format!("granularity `{t}` is not one of yearly, monthly, weekly, daily, hourly, minutely, secondly, microsecond, none"),
            )
        }),
    }
}

fn parse_custom_interval(ci: Option<i64>) -> Result<i64, ApiError> {
    match ci {
        None => Ok(1),
        Some(c) if (1..=i64::from(i32::MAX)).contains(&c) => Ok(c),
        Some(c) => Err(ApiError::new(
            ErrorCode::InvalidCustomInterval,
            format!("customInterval must be a positive integer, got {c}"),
        )),
    }
}

fn parse_impute(mode: Option<&str>, fixed: Option<f64>) -> Result<Impute, ApiError> {
    Ok(match mode.unwrap_or("auto") {
        "auto" | "linear" => Impute::Linear,
        "previous" => Impute::Previous,
        "zero" => Impute::Zero,
        "notFill" => Impute::NotFill,
        "fixed" => match fixed {
            Some(v) if v.is_finite() && v.abs() <= crate::MAX_READING_MAGNITUDE => Impute::Fixed(v),
            _ => {
                return Err(ApiError::new(
                    ErrorCode::InvalidImputeFixedValue,
                    format!("imputeMode `fixed` needs an imputeFixedValue within ±{:e}", crate::MAX_READING_MAGNITUDE),
                ));
            }
        },
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidImputeMode,
                format!("imputeMode `{other}` is not one of auto, previous, linear, fixed, zero, notFill"),
            ));
        }
    })
}

/// Checks timestamps against the granularity and lays the values on the grid.
fn lay_out(
    points: &[TimeSeriesPoint],
    granularity: Granularity,
    custom_interval: i64,
    impute: Impute,
) -> Result<Series, ApiError> {
    let values: Vec<f64> = points.iter().map(|p| p.value.unwrap_or(0.0)).collect();
    let identity = || Series { grid: values.clone(), index: (0..values.len()).collect() };
    if granularity == Granularity::None {
        return Ok(identity());
    }
    let mut ts = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        let Some(text) = p.timestamp.as_deref() else {
            return Err(ApiError::new(
                ErrorCode::InvalidSeries,
                format!("point {i} has no timestamp; every point needs one unless granularity is none"),
            ));
        };
        let t = parse_timestamp_ms(text).ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidSeries, format!("point {i} has timestamp `{text}`, which is not ISO 8601"))
        })?;
        if let Some(&prev) = ts.last()
            && t <= prev
        {
            return Err(ApiError::new(
                ErrorCode::InvalidSeries,
                format!("point {i}: timestamps must be in ascending order without duplicates"),
            ));
        }
        ts.push(t);
    }
    let Some(step) = granularity.step_ms() else { return Ok(identity()) };
    if impute == Impute::NotFill {
        return Ok(identity());
    }
    let step = step * custom_interval as f64;
    let mut index = Vec::with_capacity(ts.len());
    for (i, t) in ts.iter().enumerate() {
        let pos = ((t - ts[0]) as f64 / step).round();
        if !pos.is_finite() || pos > (MAX_POINTS * 2) as f64 {
            return Err(ApiError::new(
                ErrorCode::InvalidSeries,
                format!("point {i}: too many missing points between the first point and this one for the granularity"),
            ));
        }
        let pos = pos as usize;
        if let Some(&prev) = index.last()
            && pos <= prev
        {
            return Err(ApiError::new(
                ErrorCode::InvalidSeries,
                format!(
                    "point {i}: two points fall on the same {granularity:?} step (check granularity and customInterval)"
                ),
            ));
        }
        index.push(pos);
    }
    let len = index.last().map_or(0, |l| l + 1);
    let mut grid = vec![f64::NAN; len];
    for (i, &pos) in index.iter().enumerate() {
        grid[pos] = values[i];
    }
    let mut last_known = 0;
    for pos in 0..len {
        if grid[pos].is_finite() {
            last_known = pos;
            continue;
        }
        let next_known = index.iter().copied().find(|&p| p > pos).unwrap_or(last_known);
        grid[pos] = match impute {
            Impute::Previous | Impute::NotFill => grid[last_known],
            Impute::Zero => 0.0,
            Impute::Fixed(v) => v,
            Impute::Linear => {
                let (a, b) = (grid[last_known], values[index.iter().position(|&p| p == next_known).unwrap_or(0)]);
                let span = (next_known - last_known).max(1) as f64;
                a + (b - a) * (pos - last_known) as f64 / span
            }
        };
    }
    Ok(Series { grid, index })
}

fn parse_period(period: Option<i64>, n: usize) -> Result<Option<usize>, ApiError> {
    match period {
        None => Ok(None),
        Some(p) if p >= 0 && (p as u64) <= (n / 2) as u64 => Ok(Some(p as usize)),
        Some(p) => Err(ApiError::new(
            ErrorCode::InvalidPeriod,
            format!("period must lie between 0 and half the number of points ({}), got {p}", n / 2),
        )),
    }
}

struct ModelArgs {
    z_margin: f64,
    max_ratio: f64,
}

fn parse_model_args(sensitivity: Option<i64>, max_ratio: Option<f64>) -> Result<ModelArgs, ApiError> {
    let s = sensitivity.unwrap_or(95);
    if !(0..=99).contains(&s) {
        return Err(ApiError::new(
            ErrorCode::InvalidModelArgument,
            format!("sensitivity must be an integer between 0 and 99, got {s}"),
        ));
    }
    let r = max_ratio.unwrap_or(0.25);
    if !(r.is_finite() && r > 0.0 && r <= 0.5) {
        return Err(ApiError::new(
            ErrorCode::InvalidModelArgument,
            format!("maxAnomalyRatio must lie in (0, 0.5], got {r}"),
        ));
    }
    Ok(ModelArgs { z_margin: 3.5 + 6.5 * (99 - s) as f64 / 99.0, max_ratio: r })
}

fn severity(z: f64) -> f64 {
    (surprise_two_sided(z) / SURPRISE_SCALE).clamp(0.0, 1.0)
}

fn to_i32(v: usize) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// `POST /timeseries/entire/detect`: anomalies of every point, judged with the whole series.
pub fn entire_detect(req: &DetectRequest) -> Result<EntireDetectResponse, ApiError> {
    let points = validate_points(&req.series)?;
    let granularity = parse_granularity(req.granularity.as_deref(), false)?;
    let ci = parse_custom_interval(req.custom_interval)?;
    let args = parse_model_args(req.sensitivity, req.max_anomaly_ratio)?;
    let impute = parse_impute(req.impute_mode.as_deref(), req.impute_fixed_value)?;
    let series = lay_out(points, granularity, ci, impute)?;
    let period = match parse_period(req.period, series.grid.len())? {
        Some(p) => p,
        None => batch::detect_period(&series.grid),
    };
    let model = batch::decompose(&series.grid, period);
    let saliency = batch::spectral_residual(&series.grid);
    let n = points.len();
    let margin = args.z_margin * model.scale;
    let mut resp = EntireDetectResponse {
        period: to_i32(period),
        expected_values: Vec::with_capacity(n),
        upper_margins: vec![margin; n],
        lower_margins: vec![margin; n],
        is_anomaly: vec![false; n],
        is_negative_anomaly: vec![false; n],
        is_positive_anomaly: vec![false; n],
        severity: vec![0.0; n],
    };
    let mut candidates: Vec<(f64, usize)> = Vec::new();
    for (i, &g) in series.index.iter().enumerate() {
        let expected = model.expected[g];
        resp.expected_values.push(expected);
        let z = (series.grid[g] - expected) / model.scale;
        // The spectral residual lowers the bar a little for points that also break the
        // series' frequency structure strongly (ten times the local saliency).
        let bar = if saliency[g] > SALIENT { 0.85 * args.z_margin } else { args.z_margin };
        if z.abs() >= bar {
            candidates.push((z.abs(), i));
        }
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
    let cap = ((n as f64 * args.max_ratio).floor() as usize).max(1);
    for &(az, i) in candidates.iter().take(cap) {
        let g = series.index[i];
        let positive = series.grid[g] > model.expected[g];
        resp.is_anomaly[i] = true;
        resp.is_positive_anomaly[i] = positive;
        resp.is_negative_anomaly[i] = !positive;
        resp.severity[i] = severity(az);
    }
    Ok(resp)
}

/// `POST /timeseries/last/detect`: is the last point an anomaly, judged by the points before it.
pub fn last_detect(req: &DetectRequest) -> Result<LastDetectResponse, ApiError> {
    let points = validate_points(&req.series)?;
    let granularity = parse_granularity(req.granularity.as_deref(), false)?;
    let ci = parse_custom_interval(req.custom_interval)?;
    let args = parse_model_args(req.sensitivity, req.max_anomaly_ratio)?;
    let impute = parse_impute(req.impute_mode.as_deref(), req.impute_fixed_value)?;
    let series = lay_out(points, granularity, ci, impute)?;
    let len = series.grid.len();
    let history = &series.grid[..len - 1];
    let period = match parse_period(req.period, len)? {
        Some(p) => p,
        None => batch::detect_period(history),
    };
    let model = batch::decompose(history, period);
    let h = history.len();
    let tail = 5.min(h);
    let level = model.trend[h - tail..].iter().sum::<f64>() / tail as f64;
    let seasonal = if period >= 2 && h >= period { model.seasonal[h - period] } else { 0.0 };
    let expected = level + seasonal;
    let value = series.grid[len - 1];
    let z = (value - expected) / model.scale;
    let margin = args.z_margin * model.scale;
    let is_anomaly = z.abs() >= args.z_margin;
    let suggested = if period >= 2 { 4 * period + 1 } else { 29 };
    Ok(LastDetectResponse {
        period: to_i32(period),
        suggested_window: to_i32(suggested.clamp(MIN_POINTS, MAX_POINTS)),
        expected_value: expected,
        upper_margin: margin,
        lower_margin: margin,
        is_anomaly,
        is_negative_anomaly: is_anomaly && z < 0.0,
        is_positive_anomaly: is_anomaly && z > 0.0,
        severity: if is_anomaly { severity(z) } else { 0.0 },
    })
}

/// `POST /timeseries/changepoint/detect`: where the series' level changes lastingly.
pub fn change_point_detect(req: &ChangePointDetectRequest) -> Result<ChangePointDetectResponse, ApiError> {
    let points = validate_points(&req.series)?;
    let granularity = parse_granularity(req.granularity.as_deref(), true)?;
    if matches!(granularity, Granularity::None | Granularity::Microsecond) {
        return Err(ApiError::new(
            ErrorCode::InvalidGranularity,
            "change-point detection needs granularity yearly, monthly, weekly, daily, hourly, minutely or secondly",
        ));
    }
    let ci = parse_custom_interval(req.custom_interval)?;
    let n = points.len();
    let w = req.stable_trend_window.unwrap_or(10);
    if w < 3 || w as u64 > (n / 4) as u64 {
        return Err(ApiError::new(
            ErrorCode::InvalidModelArgument,
            format!("stableTrendWindow must lie between 3 and a quarter of the points ({}), got {w}", n / 4),
        ));
    }
    let threshold = req.threshold.unwrap_or(0.9);
    if !(threshold.is_finite() && (0.0..=1.0).contains(&threshold)) {
        return Err(ApiError::new(
            ErrorCode::InvalidModelArgument,
            format!("threshold must lie between 0 and 1, got {threshold}"),
        ));
    }
    let series = lay_out(points, granularity, ci, Impute::Linear)?;
    let period = match parse_period(req.period, series.grid.len())? {
        Some(p) => p,
        None => batch::detect_period(&series.grid),
    };
    let model = batch::decompose(&series.grid, period);
    let deseason: Vec<f64> = series.grid.iter().zip(&model.seasonal).map(|(v, s)| v - s).collect();
    let w = w as usize;
    let stat = batch::change_statistic(&deseason, w);
    // Confidence: 1 − p, with p corrected for the number of positions tested.
    let windows = deseason.len() as f64;
    let confidence: Vec<f64> = stat
        .iter()
        .map(|t| {
            let log_p = -surprise_two_sided(*t) + windows.log10();
            (1.0 - 10f64.powf(log_p.min(0.0))).clamp(0.0, 1.0)
        })
        .collect();
    let g = deseason.len();
    let mut is_cp = vec![false; g];
    for i in 0..g {
        let lo = i.saturating_sub(w);
        let hi = (i + w + 1).min(g);
        let strongest = (lo..hi).all(|j| stat[j].abs() < stat[i].abs() || (stat[j].abs() == stat[i].abs() && j >= i));
        is_cp[i] = strongest && confidence[i] >= threshold && confidence[i] > 0.0;
    }
    Ok(ChangePointDetectResponse {
        period: to_i32(period),
        is_change_point: series.index.iter().map(|&i| is_cp[i]).collect(),
        confidence_scores: series.index.iter().map(|&i| confidence[i]).collect(),
    })
}
