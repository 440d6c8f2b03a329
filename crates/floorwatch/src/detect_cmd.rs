//! `floorwatch detect`: score a `timestamp,value` CSV with the streaming detector, or
//! serve the Anomaly-Detector-compatible API.

use std::io::Write;

use anyhow::{Context, Result};

use crate::cli::{DetectArgs, Global};
use crate::config::Config;
use crate::files::{input, output};

pub async fn run(args: DetectArgs, global: &Global, config: &Config) -> Result<()> {
    if let Some(addr) = args.serve {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listening on {addr}"))?;
        eprintln!(
            "Anomaly Detector API on http://{}/anomalydetector/v1.1/timeseries/{{entire,last,changepoint}}/detect{} (Ctrl-C stops)",
            listener.local_addr()?,
            if global.anomaly_detector_key.is_some() { ", key required" } else { "" }
        );
        let azure = crate::factory::anomaly_detector(config);
        let limits = crate::factory::server_limits(config);
        plant::server::serve(listener, plant::azure::router(azure), limits, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        return Ok(());
    }
    let (Some(inp), Some(out)) = (args.input, args.output) else {
        anyhow::bail!("give --input and --output, or --serve");
    };
    let mut writer = output(&out)?;
    let summary = detector::detect_csv(input(&inp)?, &mut writer, &detector::Config::default())
        .with_context(|| format!("scoring {}", inp.display()))?;
    writer.flush()?;
    eprintln!(
        "scored {} rows (highest score {:.3}; {} timestamps went backwards, {} repeated)",
        summary.rows, summary.max_score, summary.backwards_timestamps, summary.repeated_timestamps
    );
    Ok(())
}
