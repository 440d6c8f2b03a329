//! The demo factory's people: a simulated maintenance crew per plant, which records the
//! simulator's work orders, and a demo supervisor, whom the desktop app of the demo signs
//! in as. Each is an ordinary credential in the plant's database (`access`); their tokens
//! are kept in `secrets.json` so the next start uses the same ones, and are made again
//! when the database no longer knows them (a new cluster) or they were revoked.

use anyhow::{Context, Result};
use eventlog::Database;

use crate::secrets::Secrets;

/// Name of the simulated maintenance crew's credential.
pub const CREW: &str = "Simulated maintenance crew";
/// Name of the demo supervisor's credential.
pub const DEMO_SUPERVISOR: &str = "Demo supervisor";

/// Which of the demo's people to make sure of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demo {
    /// Only the crew (a plant node run on its own, fed by `floorwatch simulate`).
    CrewOnly,
    /// The crew and the demo supervisor (`floorwatch up`).
    CrewAndSupervisor,
}

/// Makes sure plant `plant`'s demo people have working credentials in `db`; returns
/// whether `secrets` changed (the caller saves them).
pub async fn ensure(db: &Database, plant: u16, secrets: &mut Secrets, demo: Demo) -> Result<bool> {
    access::migrate(db).await.context("preparing the plant's credentials")?;
    let entry = secrets.plants.get_mut(&plant).with_context(|| format!("no secrets for plant {plant}"))?;
    let mut changed = ensure_one(db, plant, &mut entry.crew_token, access::Role::Maintenance, CREW).await?;
    if demo == Demo::CrewAndSupervisor {
        changed |=
            ensure_one(db, plant, &mut entry.supervisor_token, access::Role::Supervisor, DEMO_SUPERVISOR).await?;
    }
    Ok(changed)
}

async fn ensure_one(db: &Database, plant: u16, token: &mut String, role: access::Role, name: &str) -> Result<bool> {
    let client = db.client().await?;
    let known = access::authenticate(&client, token).await?;
    if known.is_some_and(|c| c.revoked_at.is_none() && c.role == role && c.scope.covers(plant)) {
        return Ok(false);
    }
    let (_, made) = access::create(db, role, access::Scope::plant(plant), name).await?;
    *token = made;
    Ok(true)
}
