//! `floorwatch rebuild`: drop a plant's read models and fold its whole log again.

use anyhow::Result;
use eventlog::Database;
use readmodels::ProjectionConfig;

use crate::cli::{Global, RebuildArgs};
use crate::config::Config;
use crate::databases::{Server, plant_database};

pub async fn run(args: RebuildArgs, global: &Global, config: &Config) -> Result<()> {
    let server = Server::new(global.data_dir.clone(), global.database_url.clone(), config)?;
    server.ensure_running()?;
    let db = Database::new(&server.database(&plant_database(u32::from(args.plant))).await?, 8)?;
    readmodels::migrate(&db).await?;
    eprintln!("rebuilding plant {}'s read models from its event log…", args.plant);
    let report = readmodels::rebuild(&db, ProjectionConfig::new(args.plant)).await?;
    println!(
        "rebuilt every read model of plant {} (and its maintenance track record) from {} log positions in {:.1} s",
        args.plant, report.events, report.seconds
    );
    Ok(())
}
