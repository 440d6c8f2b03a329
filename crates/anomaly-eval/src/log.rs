//! The same scoring from a plant's database: the anomaly events its monitor appended to the
//! log, against a ground-truth file.

use std::path::Path;

use domain::events::{ANOMALY, LAYOUT_CONFIGURED, LayoutConfigured, PLANT};
use eventlog::{Database, Payload};
use layout::{Layout, Scale};

use crate::EvalError;
use crate::episodes::{fold, parse_event};
use crate::score::{PlantSize, Report, ScoreRules, Span, score};
use crate::truth::read_truth;

/// Events read per query.
const PAGE: usize = 5_000;

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// The plant time evaluated. `None`: the span of the run whose `manifest.json` lies
    /// beside the ground-truth file.
    pub span: Option<Span>,
    pub rules: ScoreRules,
}

/// Evaluates the anomalies in a plant's log against a ground-truth file.
pub async fn evaluate_log(db: &Database, truth: &Path) -> Result<Report, EvalError> {
    evaluate_log_with(db, truth, &LogOptions::default()).await
}

pub async fn evaluate_log_with(db: &Database, truth_path: &Path, options: &LogOptions) -> Result<Report, EvalError> {
    let file =
        std::fs::File::open(truth_path).map_err(|source| EvalError::Io { path: truth_path.to_path_buf(), source })?;
    let truth = read_truth(std::io::BufReader::new(file))?;
    let span = match options.span {
        Some(span) => span,
        None => {
            let dir = truth_path.parent().unwrap_or_else(|| Path::new("."));
            let manifest = simulator::read_manifest(dir).map_err(|_| EvalError::NoSpan(truth_path.to_path_buf()))?;
            let end_ms = manifest.last_ts_ms.map_or(manifest.start_ms, |t| t + manifest.step_ms as i64);
            Span { start_ms: manifest.start_ms, end_ms }
        }
    };
    if span.end_ms <= span.start_ms {
        return Err(EvalError::EmptySpan(span));
    }
    let client = db.client().await.map_err(|e| EvalError::Database(format!("{e:#}")))?;

    // The plant this database belongs to, and its size, from its newest layout.
    let mut layout_event: Option<LayoutConfigured> = None;
    let mut after = 0;
    loop {
        let page = eventlog::read_all(&client, after, PAGE, Some(&[PLANT.to_owned()]))
            .await
            .map_err(|e| EvalError::Database(e.to_string()))?;
        for e in &page {
            if e.event_type == LAYOUT_CONFIGURED {
                layout_event =
                    Some(e.json().map_err(|err| EvalError::Layout(format!("position {}: {err}", e.position)))?);
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = last.position,
            _ => break,
        }
    }
    let layout_event = layout_event.ok_or(EvalError::NoLayout)?;
    let scale = Scale {
        plants: layout_event.plants,
        lines_per_plant: layout_event.lines_per_plant,
        sensors_per_plant: layout_event.sensors_per_plant,
    };
    let layout = Layout::from_toml(&layout_event.layout_toml, &scale).map_err(|e| EvalError::Layout(e.to_string()))?;
    let plant = layout
        .plants()
        .iter()
        .find(|p| p.number == layout_event.plant)
        .ok_or_else(|| EvalError::Layout(format!("plant {} is not in its own layout", layout_event.plant)))?;
    let plants = [PlantSize { id: plant.id.clone(), sensors: plant.sensors.len() as u64 }];

    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = eventlog::read_all(&client, after, PAGE, Some(&[ANOMALY.to_owned()]))
            .await
            .map_err(|e| EvalError::Database(e.to_string()))?;
        for e in &page {
            if let Payload::Json(body) = &e.payload
                && let Some(ev) = parse_event(&e.event_type, body, None)?
            {
                events.push(ev);
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = last.position,
            _ => break,
        }
    }
    let episodes = fold(events)?;
    let source = format!("database {}", db.config().get_dbname().unwrap_or("?"));
    Ok(score(&episodes, &truth, span, &plants, &options.rules, &source, "evidence", Some(&layout)))
}
