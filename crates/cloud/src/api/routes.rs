//! The query API's handlers: who asks, which parameters, which query.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::params::{self, bad};
use super::queries::{self, Bucket, Page, Resolution};
use super::{ApiState, Caller, Params};

/// Most points a trend answers per sensor.
pub const MAX_TREND_POINTS: i64 = 1_500;
/// Most rows a KPI answer holds (buckets × groups).
pub const MAX_KPI_ROWS: i64 = 20_000;

/// 400 `unknown_id` when the request names something the cloud does not know.
async fn known(s: &ApiState, named: queries::Named<'_>) -> Result<(), ApiError> {
    match queries::unknown(&s.db, &named).await? {
        Some(message) => Err(ApiError::bad("unknown_id", message)),
        None => Ok(()),
    }
}

/// No parameters at all (any given is refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

pub async fn health(State(s): State<ApiState>, Params(NoParams {}): Params<NoParams>) -> Result<Json<Value>, ApiError> {
    let client = s.db.client().await?;
    let head = eventlog::head_position(&client).await.map_err(anyhow::Error::from)?;
    Ok(Json(json!({ "status": "ok", "position": head })))
}

pub async fn plants(
    State(s): State<ApiState>,
    caller: Caller,
    Params(NoParams {}): Params<NoParams>,
) -> Result<Json<Vec<queries::PlantInfo>>, ApiError> {
    let scope = caller.readable(None)?;
    Ok(Json(queries::plants(&s.db, scope.as_deref()).await?))
}

pub async fn lines(
    State(s): State<ApiState>,
    caller: Caller,
    Path(plant): Path<String>,
    Params(NoParams {}): Params<NoParams>,
) -> Result<Json<Vec<queries::LineInfo>>, ApiError> {
    let plant = params::plant_number(&plant)?;
    caller.read(plant)?;
    queries::lines(&s.db, plant)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::bad("unknown_id", format!("the cloud knows no plant {plant}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachinesParams {
    line: Option<String>,
    machine_type: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

pub async fn machines(
    State(s): State<ApiState>,
    caller: Caller,
    Path(plant): Path<String>,
    Params(p): Params<MachinesParams>,
) -> Result<Json<Page<queries::MachineInfo>>, ApiError> {
    let plant = params::plant_number(&plant)?;
    caller.read(plant)?;
    let line = p.line.as_deref().map(|l| params::id("line", l)).transpose()?;
    let machine_type = p.machine_type.as_deref().map(|t| params::id("machine_type", t)).transpose()?;
    let limit = params::limit(p.limit.as_deref())?;
    let after = p.cursor.as_deref().map(|c| params::decode_cursor(c, 1)).transpose()?.map(|mut c| c.remove(0));
    known(
        &s,
        queries::Named {
            plants: vec![plant],
            plant: Some(plant),
            line: line.as_deref(),
            machine_type: machine_type.as_deref(),
            ..Default::default()
        },
    )
    .await?;
    let filter = queries::MachineFilter {
        line: line.as_deref(),
        machine_type: machine_type.as_deref(),
        machine: None,
        after: after.as_deref(),
        limit,
    };
    let items = queries::machines(&s.db, plant, &filter).await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|m| params::encode_cursor(std::slice::from_ref(&m.machine_id))))
        .flatten();
    Ok(Json(Page { items, next_cursor }))
}

/// A machine path parameter: checked, its plant in the caller's scope.
fn machine_path(caller: &Caller, machine: &str) -> Result<(u16, String), ApiError> {
    let machine = params::id("machine", machine)?;
    let plant = params::plant_of(&machine)?;
    caller.read(plant)?;
    Ok((plant, machine))
}

pub async fn machine(
    State(s): State<ApiState>,
    caller: Caller,
    Path(machine): Path<String>,
    Params(NoParams {}): Params<NoParams>,
) -> Result<Json<Value>, ApiError> {
    let (plant, machine) = machine_path(&caller, &machine)?;
    let filter =
        queries::MachineFilter { line: None, machine_type: None, machine: Some(&machine), after: None, limit: 1 };
    let info = queries::machines(&s.db, plant, &filter)
        .await?
        .pop()
        .ok_or_else(|| ApiError::bad("unknown_id", format!("the cloud knows no machine {machine}")))?;
    let client = s.db.client().await?;
    let sensors = queries::machine_sensors(&client, plant, &machine).await?;
    let mut body = serde_json::to_value(info).map_err(anyhow::Error::from)?;
    body["sensor_list"] = serde_json::to_value(sensors).map_err(anyhow::Error::from)?;
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendParams {
    from: Option<String>,
    to: Option<String>,
    resolution: Option<String>,
    sensor: Option<String>,
}

pub async fn trend(
    State(s): State<ApiState>,
    caller: Caller,
    Path(machine): Path<String>,
    Params(p): Params<TrendParams>,
) -> Result<Json<queries::Trend>, ApiError> {
    let (plant, machine) = machine_path(&caller, &machine)?;
    let (from, to) = params::range(p.from.as_deref(), p.to.as_deref(), chrono::Duration::days(3 * 366), "a trend")?;
    let now = Utc::now();
    let minute_window = now - chrono::Duration::days(i64::from(s.config.minute_retention_days));
    let points = |r: Resolution| (to - from).num_milliseconds() / r.duration().num_milliseconds().max(1);
    let resolution = match p.resolution.as_deref().unwrap_or("auto") {
        "auto" => [Resolution::Minute, Resolution::Hour, Resolution::Day]
            .into_iter()
            .find(|&r| points(r) <= MAX_TREND_POINTS && (r != Resolution::Minute || from >= minute_window))
            .unwrap_or(Resolution::Day),
        other => match params::choice("resolution", other, &["auto", "minute", "hour", "day"])? {
            "minute" => Resolution::Minute,
            "hour" => Resolution::Hour,
            _ => Resolution::Day,
        },
    };
    if points(resolution) > MAX_TREND_POINTS {
        return Err(ApiError::bad(
            "range_too_long",
            format!(
                "{} {} points per sensor exceed {MAX_TREND_POINTS}; ask for a coarser resolution or a shorter range",
                points(resolution),
                resolution.as_str()
            ),
        ));
    }
    if resolution == Resolution::Minute && from < minute_window {
        return Err(bad(format!(
            "minute aggregates are kept {} days; ask for hour or day resolution for older times",
            s.config.minute_retention_days
        )));
    }
    let client = s.db.client().await?;
    let mut sensors = queries::machine_sensors(&client, plant, &machine).await?;
    drop(client);
    if sensors.is_empty() {
        return Err(ApiError::bad("unknown_id", format!("the cloud knows no machine {machine}")));
    }
    if let Some(wanted) = &p.sensor {
        let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
        for w in &wanted {
            if !sensors.iter().any(|s| s.name == *w || s.sensor_id.to_string() == *w) {
                return Err(bad(format!(
                    "sensor {:?} is not one of machine {machine}'s",
                    w.chars().take(60).collect::<String>()
                )));
            }
        }
        sensors.retain(|s| wanted.iter().any(|w| s.name == *w || s.sensor_id.to_string() == *w));
    }
    let (from, to) = align(from, to, resolution.duration());
    Ok(Json(queries::trend(&s.db, plant, &machine, sensors, resolution, from, to).await?))
}

/// `[from, to)` widened to whole buckets.
fn align(from: DateTime<Utc>, to: DateTime<Utc>, width: chrono::Duration) -> (DateTime<Utc>, DateTime<Utc>) {
    let width = TimeDelta::milliseconds(width.num_milliseconds());
    let start = from.duration_trunc(width).unwrap_or(from);
    let end = to.duration_trunc(width).unwrap_or(to);
    (start, if end < to { end + width } else { end })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiParams {
    plant: Option<String>,
    from: Option<String>,
    to: Option<String>,
    bucket: Option<String>,
    by: Option<String>,
}

pub async fn kpis(
    State(s): State<ApiState>,
    caller: Caller,
    Params(p): Params<KpiParams>,
) -> Result<Json<Vec<queries::KpiRow>>, ApiError> {
    let asked = params::plants(p.plant.as_deref())?;
    let scope = caller.readable(asked.as_ref())?;
    if let Some(plants) = &asked {
        known(&s, queries::Named { plants: plants.iter().copied().collect(), ..Default::default() }).await?;
    }
    let bucket = match params::choice("bucket", p.bucket.as_deref().unwrap_or("hour"), &["hour", "day"])? {
        "hour" => Bucket::Hour,
        _ => Bucket::Day,
    };
    let by = params::choice("by", p.by.as_deref().unwrap_or("plant"), &["plant", "line", "machine_type"])?;
    let max = match bucket {
        Bucket::Hour => chrono::Duration::days(31),
        Bucket::Day => chrono::Duration::days(731),
    };
    let (from, to) = params::range(p.from.as_deref(), p.to.as_deref(), max, "an answer in that bucket")?;
    let (from, to) = align(from, to, bucket.duration());
    let buckets = (to - from).num_milliseconds() / bucket.duration().num_milliseconds();
    let groups: i64 = match by {
        "plant" => 1,
        "line" => 100,
        _ => 20,
    } * scope.as_ref().map_or(10, |p| p.len() as i64);
    if buckets * groups > MAX_KPI_ROWS {
        return Err(ApiError::bad(
            "range_too_long",
            format!("{buckets} buckets for every {by} is too many rows; ask for a coarser bucket or a shorter range"),
        ));
    }
    Ok(Json(queries::kpis(&s.db, scope.as_deref(), from, to, bucket, by, Utc::now()).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyParams {
    plant: Option<String>,
    severity: Option<String>,
    state: Option<String>,
    machine: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// What a list narrowed by plant and machine asks for.
struct Scope {
    /// The plants named, narrowed to the machine's plant when a machine is named.
    asked: Option<BTreeSet<u16>>,
    machine: Option<String>,
    /// The plants among them the caller may read.
    plants: Option<Vec<i16>>,
}

/// The scope of a list: a named machine must belong to a plant the caller may read.
fn scope(caller: &Caller, plant: Option<&str>, machine: Option<&str>) -> Result<Scope, ApiError> {
    let mut asked = params::plants(plant)?;
    let machine = machine.map(|m| params::id("machine", m)).transpose()?;
    if let Some(m) = &machine {
        let plant = params::plant_of(m)?;
        asked.get_or_insert_with(|| [plant].into()).retain(|&x| x == plant);
        caller.read(plant)?;
    }
    let plants = caller.readable(asked.as_ref())?;
    Ok(Scope { asked, machine, plants })
}

pub async fn anomalies(
    State(s): State<ApiState>,
    caller: Caller,
    Params(p): Params<AnomalyParams>,
) -> Result<Json<Page<queries::AnomalyOut>>, ApiError> {
    let Scope { asked, machine, plants } = scope(&caller, p.plant.as_deref(), p.machine.as_deref())?;
    known(
        &s,
        queries::Named {
            plants: asked.iter().flatten().copied().collect(),
            plant: machine.as_deref().map(params::plant_of).transpose()?,
            machine: machine.as_deref(),
            ..Default::default()
        },
    )
    .await?;
    let from = params::optional_time("from", p.from.as_deref())?;
    let to = params::optional_time("to", p.to.as_deref())?;
    params::check_order(from, to)?;
    let before = match p.cursor.as_deref() {
        Some(c) => {
            let parts = params::decode_cursor(c, 3)?;
            let plant = params::plant_number(&parts[1])
                .map_err(|_| ApiError::bad("bad_cursor", "cursor is not one this API handed out"))?;
            Some((params::cursor_time(&parts[0])?, plant as i16, parts[2].clone()))
        }
        None => None,
    };
    let filter = queries::AnomalyFilter {
        plants,
        severity: params::choices("severity", p.severity.as_deref(), &["minor", "major", "critical"])?,
        state: params::choices("state", p.state.as_deref(), &["new", "acknowledged", "shelved", "resolved"])?,
        machine,
        from,
        to,
        before,
        limit: params::limit(p.limit.as_deref())?,
    };
    let items = queries::anomalies(&s.db, &filter).await?;
    let next_cursor = (items.len() as i64 == filter.limit)
        .then(|| {
            items.last().map(|a| {
                params::encode_cursor(&[
                    a.started_at.timestamp_micros().to_string(),
                    a.plant.to_string(),
                    a.anomaly_id.clone(),
                ])
            })
        })
        .flatten();
    Ok(Json(Page { items, next_cursor }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceParams {
    plant: Option<String>,
    due_within_days: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

pub async fn maintenance(
    State(s): State<ApiState>,
    caller: Caller,
    Params(p): Params<MaintenanceParams>,
) -> Result<Json<Page<queries::MaintenanceOut>>, ApiError> {
    let asked = params::plants(p.plant.as_deref())?;
    let plants = caller.readable(asked.as_ref())?;
    if let Some(plants) = &asked {
        known(&s, queries::Named { plants: plants.iter().copied().collect(), ..Default::default() }).await?;
    }
    let due = params::days("due_within_days", p.due_within_days.as_deref())?;
    let limit = params::limit(p.limit.as_deref())?;
    let bad_cursor = || ApiError::bad("bad_cursor", "cursor is not one this API handed out");
    let after = match p.cursor.as_deref() {
        Some(c) => {
            let parts = params::decode_cursor(c, 3)?;
            let days = parts[0].parse::<f64>().ok().filter(|d| d.is_finite()).ok_or_else(bad_cursor)?;
            let plant = params::plant_number(&parts[1]).map_err(|_| bad_cursor())?;
            Some((days, plant as i16, parts[2].clone()))
        }
        None => None,
    };
    let items = queries::maintenance(&s.db, plants.as_deref(), due, after, limit).await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| {
            items.last().and_then(|m| {
                Some(params::encode_cursor(&[m.lower_days?.to_string(), m.plant.to_string(), m.machine_id.clone()]))
            })
        })
        .flatten();
    Ok(Json(Page { items, next_cursor }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    plant: Option<String>,
    machine: Option<String>,
    kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

pub async fn maintenance_log(
    State(s): State<ApiState>,
    caller: Caller,
    Params(p): Params<LogParams>,
) -> Result<Json<Page<queries::LogOut>>, ApiError> {
    let Scope { asked, machine, plants } = scope(&caller, p.plant.as_deref(), p.machine.as_deref())?;
    known(
        &s,
        queries::Named {
            plants: asked.iter().flatten().copied().collect(),
            plant: machine.as_deref().map(params::plant_of).transpose()?,
            machine: machine.as_deref(),
            ..Default::default()
        },
    )
    .await?;
    let from = params::optional_time("from", p.from.as_deref())?;
    let to = params::optional_time("to", p.to.as_deref())?;
    params::check_order(from, to)?;
    let before = match p.cursor.as_deref() {
        Some(c) => {
            let parts = params::decode_cursor(c, 3)?;
            let plant = params::plant_number(&parts[1])
                .map_err(|_| ApiError::bad("bad_cursor", "cursor is not one this API handed out"))?;
            Some((params::cursor_time(&parts[0])?, plant as i16, parts[2].clone()))
        }
        None => None,
    };
    let filter = queries::LogFilter {
        plants,
        machine,
        kind: params::choices("kind", p.kind.as_deref(), &["planned", "emergency", "failure"])?,
        from,
        to,
        before,
        limit: params::limit(p.limit.as_deref())?,
    };
    let items = queries::maintenance_log(&s.db, &filter).await?;
    let next_cursor = (items.len() as i64 == filter.limit)
        .then(|| {
            items.last().map(|e| {
                params::encode_cursor(&[e.at.timestamp_micros().to_string(), e.plant.to_string(), e.entry_id.clone()])
            })
        })
        .flatten();
    Ok(Json(Page { items, next_cursor }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionParams {
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

pub async fn predictions(
    State(s): State<ApiState>,
    caller: Caller,
    Path(machine): Path<String>,
    Params(p): Params<PredictionParams>,
) -> Result<Json<Page<queries::PredictionOut>>, ApiError> {
    let (plant, machine) = machine_path(&caller, &machine)?;
    known(&s, queries::Named { plant: Some(plant), machine: Some(&machine), ..Default::default() }).await?;
    let from = params::optional_time("from", p.from.as_deref())?;
    let to = params::optional_time("to", p.to.as_deref())?;
    params::check_order(from, to)?;
    let before = match p.cursor.as_deref() {
        Some(c) => Some(params::cursor_time(&params::decode_cursor(c, 1)?[0])?),
        None => None,
    };
    let limit = params::limit(p.limit.as_deref())?;
    let items = queries::predictions(&s.db, plant, &machine, from, to, before, limit).await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|x| params::encode_cursor(&[x.predicted_at.timestamp_micros().to_string()])))
        .flatten();
    Ok(Json(Page { items, next_cursor }))
}

pub async fn models(
    State(s): State<ApiState>,
    caller: Caller,
    Params(NoParams {}): Params<NoParams>,
) -> Result<Json<Vec<queries::ModelOut>>, ApiError> {
    caller.readable(None)?;
    Ok(Json(queries::models(&s.db).await?))
}
