//! `floorwatch user add | list | revoke`: people's own credentials at a plant, kept
//! hashed in the plant's database (`access`). A token is printed once, when it is made.

use anyhow::{Context, Result};
use eventlog::Database;

use crate::cli::{Global, UserCommand};
use crate::config::Config;
use crate::databases::{Server, plant_database};

pub async fn run(cmd: UserCommand, global: &Global, config: &Config) -> Result<()> {
    let plant = match &cmd {
        UserCommand::Add(a) => a.plant,
        UserCommand::List(a) => a.plant,
        UserCommand::Revoke(a) => a.plant,
    };
    let server = Server::new(global.data_dir.clone(), global.database_url.clone(), config)?;
    server.ensure_running()?;
    let url = server.database(&plant_database(u32::from(plant))).await?;
    let db = Database::new(&url, 2)?;
    access::migrate(&db).await.context("preparing the plant's credentials")?;
    match cmd {
        UserCommand::Add(args) => {
            let role = args.role.into();
            let (credential, token) = access::create(&db, role, access::Scope::plant(plant), &args.name).await?;
            eprintln!(
                "{} may now sign in at plant {plant} as a {role} (credential {}). Their token, shown only this once:",
                credential.label, credential.id
            );
            println!("{token}");
        }
        UserCommand::List(_) => {
            println!("{:<16} {:<12} {:<30} {:<20} revoked", "credential", "role", "name", "created");
            for c in access::list(&db).await? {
                let plants = c.scope.plants().map(|p| p.iter().map(|n| format!("P{n}")).collect::<Vec<_>>());
                if plants.is_some_and(|p| !p.contains(&format!("P{plant}"))) {
                    continue;
                }
                println!(
                    "{:<16} {:<12} {:<30} {:<20} {}",
                    c.id,
                    c.role.as_str(),
                    c.label,
                    c.created_at.format("%Y-%m-%d %H:%M"),
                    c.revoked_at.map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M").to_string())
                );
            }
        }
        UserCommand::Revoke(args) => {
            anyhow::ensure!(
                access::revoke(&db, &args.id).await?,
                "plant {plant} has no credential {:?} that is not already revoked (see `floorwatch user list --plant {plant}`)",
                args.id
            );
            eprintln!("credential {} is revoked: the plant node refuses it within seconds", args.id);
        }
    }
    Ok(())
}
