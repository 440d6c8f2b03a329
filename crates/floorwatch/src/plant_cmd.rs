//! `floorwatch plant`: runs one plant node until Ctrl-C.

use anyhow::{Context, Result};
use eventlog::Database;
use plant::ingest::system_clock;

use crate::cli::{Global, PlantArgs};
use crate::config::Config;
use crate::databases::{Server, data_dir, plant_database};
use crate::factory::FactorySpec;
use crate::secrets::Secrets;

pub async fn run(args: PlantArgs, global: &Global, config: &Config) -> Result<()> {
    let spec = FactorySpec::from_args(&args.factory)?;
    anyhow::ensure!(
        spec.layout.plant_by_number(args.plant).is_some(),
        "plant {} is not in a factory of {} plants (--plants)",
        args.plant,
        args.factory.plants
    );
    let server = Server::new(global.data_dir.clone(), global.database_url.clone(), config)?;
    server.ensure_running()?;
    let db = Database::new(&server.database(&plant_database(u32::from(args.plant))).await?, 24)?;
    let dir = data_dir(global);
    let mut secrets = Secrets::load_or_create(&dir, &spec.layout, &[args.plant])?;
    if crate::people::ensure(&db, args.plant, &mut secrets, crate::people::Demo::CrewOnly).await? {
        secrets.save(&dir)?;
    }
    let addr = args.listen.unwrap_or_else(|| ([127, 0, 0, 1], FactorySpec::port(args.plant, config)).into());
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listening on {addr}"))?;
    let local = listener.local_addr()?;
    let node_config = spec.node_config(args.plant, config);
    eprintln!("plant {} listening on http://{local} (Ctrl-C stops)", args.plant);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("stopping: finishing uploads in flight…");
    };
    plant::node::run(db, node_config, secrets.node(args.plant)?, listener, system_clock(), shutdown, |_| {}).await
}
