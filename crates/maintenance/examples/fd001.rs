//! Accuracy run on NASA C-MAPSS FD001 (Saxena et al., 2008): k-fold cross-validation by unit.
//!
//! ```text
//! cargo run --release --example fd001 -- [PATH/train_FD001.txt] [FOLDS] [SEED] [CALIBRATION_FOLDS] [BINS]
//! ```
//!
//! The 100 engines are shuffled with the seed and split into FOLDS groups (default 5). For
//! each group, a model is trained on the other engines with the library's defaults (RUL
//! capped at 125 cycles, 90 % interval) and evaluated on the group's engines: each history
//! cut at 10 random cycles (at least 30 cycles long), one prediction per cut at its last
//! cycle, and separately at every cycle. The pooled figures over all 100 engines are printed
//! last — RMSE, MAE and NASA's score against the truth capped at 125 and as given, interval
//! coverage as given overall and by bucket of predicted life — followed by the single
//! default split that `train_csv` itself records in a model.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use maintenance::{
    Accuracy, Scored, TrainOptions, TrainingSet, cmapss_to_csv, cut_figures, read_histories, train, train_csv,
};
use rand::SeedableRng;
use rand::seq::SliceRandom;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cmapss/train_FD001.txt")
    });
    let folds: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(7);
    // Optional: the interval's calibration folds and bins (the library's defaults otherwise).
    let defaults = TrainOptions::default();
    let calibration_folds: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(defaults.calibration_folds);
    let interval_bins: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(defaults.interval_bins);
    let base = TrainOptions { seed, calibration_folds, interval_bins, ..defaults };

    let raw = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut csv = Vec::new();
    let rows = cmapss_to_csv(raw.as_slice(), &mut csv)?;
    let table = read_histories(csv.as_slice())?;
    let units: Vec<String> = table.units().iter().map(|u| u.id().to_string()).collect();
    println!(
        "FD001: {rows} rows, {} units; {folds}-fold by unit, seed {seed}; interval: {calibration_folds} calibration folds, up to {interval_bins} bins",
        units.len()
    );
    let set = TrainingSet::run_to_failure(table)?;

    let mut shuffled = units.clone();
    shuffled.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let mut points = Vec::new();
    let mut every_row = Vec::new();
    println!(
        "{:>4} {:>6} | {:>6} {:>6} {:>6} {:>6} | {:>7} {:>6} {:>6} | {:>6} {:>6} | {:>5}",
        "fold", "cuts", "RMSE", "MAE", "bias", "cover", "RMSE~", "cover~", "width", "RMSE*", "cover*", "secs"
    );
    for fold in 0..folds {
        let held: Vec<String> =
            shuffled.iter().enumerate().filter(|(i, _)| i % folds == fold).map(|(_, u)| u.clone()).collect();
        let options = TrainOptions { validation_unit_ids: Some(held), ..base.clone() };
        let started = Instant::now();
        let (_, report) = train(&set, &options)?;
        let secs = started.elapsed().as_secs_f64();
        let metrics = report.metrics.ok_or("no validation metrics")?;
        let t = metrics.truncated.ok_or("no truncated points")?;
        let g = metrics.truncated_as_given.ok_or("no cut with a known remaining life")?;
        let e = metrics.every_row.ok_or("no labelled rows")?;
        println!(
            "{fold:>4} {:>6} | {:>6.2} {:>6.2} {:>6.2} {:>6.3} | {:>7.2} {:>6.3} {:>6.1} | {:>6.2} {:>6.3} | {secs:>5.1}",
            t.points, t.rmse, t.mae, t.bias, t.coverage, g.rmse, g.coverage, g.mean_interval_width, e.rmse, e.coverage
        );
        points.extend(report.validation_points);
        every_row.push(e);
    }
    println!(
        "(RMSE, MAE, bias, cover: truth capped at 125; RMSE~, cover~, width: truth as given; *: every cycle, capped)"
    );
    let capped: Vec<Scored> = points
        .iter()
        .map(|p| Scored { predicted: p.predicted_rul, lower: p.lower, upper: p.upper, actual: p.actual_rul })
        .collect();
    let c = Accuracy::of(&capped, units.len()).ok_or("no cut")?;
    let figures = cut_figures(&points, Some(125.0));
    let g = figures.as_given.ok_or("no cut with a known remaining life")?;
    let score = |a: &Accuracy| a.nasa_score.map_or(f64::NAN, |s| 100.0 * s);
    println!("pooled over {} cut histories of {} held-out engines:", c.points, c.units);
    println!(
        "  truth capped at 125: RMSE {:.2}, MAE {:.2}, bias {:+.2}, NASA score per 100 cuts {:.0}, coverage {:.3}",
        c.rmse,
        c.mae,
        c.bias,
        score(&c),
        c.coverage
    );
    println!(
        "  truth as given:      RMSE {:.2}, MAE {:.2}, bias {:+.2}, NASA score per 100 cuts {:.3e}, coverage {:.3} (nominal 0.900), mean width {:.1}",
        g.rmse,
        g.mae,
        g.bias,
        score(&g),
        g.coverage,
        g.mean_interval_width
    );
    for b in &figures.by_bucket {
        let range = match b.to {
            Some(to) => format!("{:.0}–{:.0}", b.from, to),
            None => format!("≥ {:.0}", b.from),
        };
        println!(
            "    {:<5} life (predicted {range:>7}): {:>4} cuts, {:>3} engines: coverage {:.3}, mean width {:.1}, RMSE {:.2}",
            b.bucket,
            b.accuracy.points,
            b.accuracy.units,
            b.accuracy.coverage,
            b.accuracy.mean_interval_width,
            b.accuracy.rmse
        );
    }
    let e = pooled(&every_row);
    println!(
        "  every cycle (capped): {} predictions: RMSE {:.2}, MAE {:.2}, coverage {:.3}",
        e.points, e.rmse, e.mae, e.coverage
    );

    let started = Instant::now();
    let (model, _) = train_csv(csv.as_slice(), &base)?;
    let secs = started.elapsed().as_secs_f64();
    let json = model.to_json()?;
    if let Some(m) = model.metrics()
        && let (Some(t), Some(e)) = (&m.truncated, &m.every_row)
    {
        println!(
            "train_csv default split ({} validation units): cut RMSE {:.2}, coverage {:.3}; every cycle RMSE {:.2}, coverage {:.3}; {} dropped columns; model {} KiB; {secs:.1} s",
            model.training().validation_units.len(),
            t.rmse,
            t.coverage,
            e.rmse,
            e.coverage,
            model.feature_set().dropped.len(),
            json.len() / 1024
        );
    }
    Ok(())
}

/// Pools per-fold figures, weighting by points.
fn pooled(parts: &[Accuracy]) -> Accuracy {
    let points: usize = parts.iter().map(|a| a.points).sum();
    let n = points as f64;
    let mean = |f: fn(&Accuracy) -> f64| parts.iter().map(|a| f(a) * a.points as f64).sum::<f64>() / n;
    Accuracy {
        units: parts.iter().map(|a| a.units).sum(),
        points,
        rmse: mean(|a| a.rmse * a.rmse).sqrt(),
        mae: mean(|a| a.mae),
        bias: mean(|a| a.bias),
        coverage: mean(|a| a.coverage),
        mean_interval_width: mean(|a| a.mean_interval_width),
        nasa_score: None,
    }
}
