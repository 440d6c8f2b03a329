//! `floorwatch cloud`: the cloud node, its credentials, its training and its rebuild.

use std::path::Path;

use access::{Role, Scope};
use anyhow::{Context, Result};
use eventlog::Database;

use crate::cli::{CloudArgs, CloudCommand, CloudTrainArgs, Global, TokenCommand, TokenCreateArgs};
use crate::config::Config;
use crate::databases::Server;
use crate::secrets::Secrets;

/// The cloud's database on a server.
pub const CLOUD_DATABASE: &str = "floorwatch_cloud";

/// The cloud's database, created and migrated if needed.
pub async fn cloud_database(server: &Server, connections: usize) -> Result<Database> {
    let db = Database::new(&server.database(CLOUD_DATABASE).await?, connections)?;
    cloud::migrate(&db).await?;
    Ok(db)
}

pub async fn run(args: CloudArgs, global: &Global, config: &Config) -> Result<()> {
    let server = Server::new(global.data_dir.clone(), global.database_url.clone(), config)?;
    server.ensure_running()?;
    match args.command {
        None => serve(&server, args.listen, config).await,
        Some(CloudCommand::Token(TokenCommand::Create(a))) => create_token(&server, a).await,
        Some(CloudCommand::Token(TokenCommand::List)) => list_tokens(&server).await,
        Some(CloudCommand::Token(TokenCommand::Revoke { id })) => {
            let db = cloud_database(&server, 2).await?;
            anyhow::ensure!(access::revoke(&db, &id).await?, "no unrevoked credential {id}");
            println!("revoked {id} (the API refuses it within a few seconds)");
            Ok(())
        }
        Some(CloudCommand::Train(a)) => train(&server, a).await,
        Some(CloudCommand::Rebuild) => {
            let db = cloud_database(&server, 8).await?;
            eprintln!("rebuilding the cloud's read models from its event log…");
            let started = std::time::Instant::now();
            let position = cloud::projections::rebuild(&db, config.cloud_config().history_grace_ms).await?;
            println!(
                "rebuilt the cloud's read models to position {position} in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

async fn serve(server: &Server, listen: Option<std::net::SocketAddr>, config: &Config) -> Result<()> {
    let db = cloud_database(server, 24).await?;
    let addr = listen.unwrap_or_else(|| ([127, 0, 0, 1], config.cloud.http_port).into());
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listening on {addr}"))?;
    eprintln!("cloud node listening on http://{} (Ctrl-C stops)", listener.local_addr()?);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("stopping the cloud node…");
    };
    cloud::node::run(db, config.cloud_config(), listener, shutdown).await
}

async fn create_token(server: &Server, a: TokenCreateArgs) -> Result<()> {
    let db = cloud_database(server, 2).await?;
    let scope = if a.plant.is_empty() { Scope::AllPlants } else { Scope::Plants(a.plant.iter().copied().collect()) };
    let label = if a.label.trim().is_empty() {
        match scope.plants() {
            Some(p) => format!("{} of {}", a.role, p.iter().map(|n| format!("P{n}")).collect::<Vec<_>>().join(",")),
            None => a.role.to_string(),
        }
    } else {
        a.label.clone()
    };
    let (credential, token) = access::create(&db, a.role, scope, &label).await?;
    eprintln!("credential {} ({}, {label}); the token is shown this once:", credential.id, credential.role);
    println!("{token}");
    Ok(())
}

async fn list_tokens(server: &Server) -> Result<()> {
    let db = cloud_database(server, 2).await?;
    println!("{:<18} {:<11} {:<14} {:<26} label", "id", "role", "plants", "created");
    for c in access::list(&db).await? {
        let plants =
            c.scope.plants().map_or("all".to_owned(), |p| p.iter().map(u16::to_string).collect::<Vec<_>>().join(","));
        let state = if c.revoked_at.is_some() { " (revoked)" } else { "" };
        println!(
            "{:<18} {:<11} {:<14} {:<26} {}{state}",
            c.id,
            c.role.as_str(),
            plants,
            c.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
            c.label
        );
    }
    Ok(())
}

async fn train(server: &Server, a: CloudTrainArgs) -> Result<()> {
    let db = cloud_database(server, 4).await?;
    let plants = (!a.plant.is_empty()).then_some(a.plant.as_slice());
    let options = factory_history::FactoryTrainOptions {
        seed: a.seed,
        created_at_ms: chrono::Utc::now().timestamp_millis(),
        ..factory_history::FactoryTrainOptions::default()
    };
    eprintln!("training on every plant's history in the cloud…");
    let (model, report) = cloud::train::train(&db, plants, options, a.activate).await?;
    if let Some(path) = &a.model {
        std::fs::write(path, model.to_json()?).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "model {}: {} machines ({} held out), {} runs failed, {} serviced, {} open; {} training rows",
        report.model_version,
        report.machines,
        report.validation_machines,
        report.runs_failed,
        report.runs_serviced,
        report.runs_open,
        report.training_rows
    );
    if let Some(v) = &report.validation {
        println!("held-out accuracy: {}", serde_json::to_string(v)?);
    }
    println!(
        "registered in the cloud's registry{}",
        if a.activate {
            " and active: the plants' forwarders fetch it"
        } else {
            " (not active: --activate publishes it)"
        }
    );
    Ok(())
}

/// Credentials `up` keeps for the local cloud: a forwarder per plant and a manager, made
/// when missing (or no longer valid) and kept in the secrets file.
pub async fn ensure_local_credentials(db: &Database, dir: &Path, secrets: &mut Secrets, plants: &[u16]) -> Result<()> {
    let client = db.client().await?;
    let valid = |token: &str| {
        let client = &client;
        let token = token.to_owned();
        async move { access::authenticate(client, &token).await.map(|c| c.is_some_and(|c| c.revoked_at.is_none())) }
    };
    let mut changed = false;
    for &n in plants {
        let ok = match secrets.cloud.forwarder_tokens.get(&n) {
            Some(t) => valid(t).await?,
            None => false,
        };
        if !ok {
            let (_, token) = access::create(db, Role::Forwarder, Scope::plant(n), &format!("forwarder P{n}")).await?;
            secrets.cloud.forwarder_tokens.insert(n, token);
            changed = true;
        }
    }
    if !valid(&secrets.cloud.manager_token).await? {
        let (_, token) = access::create(db, Role::Manager, Scope::AllPlants, "manager (desktop app)").await?;
        secrets.cloud.manager_token = token;
        changed = true;
    }
    if changed {
        secrets.save(dir)?;
    }
    Ok(())
}
