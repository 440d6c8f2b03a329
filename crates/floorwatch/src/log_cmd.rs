//! `floorwatch log tail`: prints a plant's event log, and follows it live.

use std::time::Duration;

use anyhow::Result;
use eventlog::{Database, LOG_CHANNEL, Payload, RecordedEvent, head_position, read_all};

use crate::cli::{LogCommand, TailArgs};
use crate::databases::{Server, plant_database};

pub async fn run(cmd: LogCommand, server: &Server) -> Result<()> {
    match cmd {
        LogCommand::Tail(args) => tail(args, server).await,
    }
}

async fn tail(args: TailArgs, server: &Server) -> Result<()> {
    server.ensure_running()?;
    let url = server.database(&plant_database(args.plant)).await?;
    let db = Database::connect_and_migrate(&url, 2).await?;
    let mut listener = if args.follow { Some(db.listen(&[LOG_CHANNEL]).await?) } else { None };
    let client = db.client().await?;
    let mut after = match args.after {
        Some(p) => p.max(0),
        None => (head_position(&client).await? - args.lines.max(0)).max(0),
    };
    let categories = (!args.category.is_empty()).then_some(args.category.as_slice());
    if args.follow {
        eprintln!("following plant {}'s log after position {after} (Ctrl-C to stop)", args.plant);
    }
    loop {
        let events = read_all(&client, after, 1000, categories).await?;
        for e in &events {
            println!("{}", line(e));
        }
        if let Some(last) = events.last() {
            after = last.position;
            if events.len() == 1000 {
                continue;
            }
        }
        let Some(listener) = listener.as_mut() else { return Ok(()) };
        tokio::select! {
            woke = listener.wait(Duration::from_secs(30)) => { woke?; }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// One event as one line: position, time, stream@version, type, and a short body.
fn line(e: &RecordedEvent) -> String {
    let body = match &e.payload {
        Payload::Json(v) => {
            let text = v.to_string();
            if text.chars().count() > 120 { format!("{}…", text.chars().take(119).collect::<String>()) } else { text }
        }
        Payload::Telemetry { bytes, occurred_at } => match e.readings() {
            Ok(r) => {
                let sensors = r.iter().map(|r| r.sensor);
                let (lo, hi) = (sensors.clone().min().unwrap_or(0), sensors.max().unwrap_or(0));
                format!(
                    "{} readings of sensors {lo}..={hi} from {} ({} bytes)",
                    r.len(),
                    occurred_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                    bytes.len()
                )
            }
            Err(err) => format!("undecodable batch: {err}"),
        },
    };
    let who = e.metadata.actor.as_deref().or(e.metadata.source.as_deref()).unwrap_or("-");
    format!(
        "{:>10}  {}  {}@{}  {}  [{}]  {}",
        e.position,
        e.recorded_at.format("%H:%M:%S%.3f"),
        e.stream,
        e.version,
        e.event_type,
        who,
        body
    )
}
