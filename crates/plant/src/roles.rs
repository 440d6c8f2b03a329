//! The plant node's own database role. The database's owner applies the migrations; the
//! running node connects as a role with only what running needs (`sql/node_role.sql`
//! says what), so a flaw in the node cannot rewrite the log, make credentials or change
//! the schema.

use anyhow::{Context, Result};
use eventlog::Database;

/// The node role of the database `database`: one per plant database, since roles belong
/// to the whole server.
pub fn node_role(database: &str) -> String {
    let base: String = database.chars().take(58).collect();
    format!("{base}_node")
}

/// Creates (or updates) the node role of `owner`'s database with `password` and its
/// grants. Runs as the owner, after the migrations. Roles belong to the whole server, so
/// plants prepared at the same moment may change the same catalog rows: the change is
/// repeatable and goes through [`eventlog::server_wide`].
pub async fn grant_node_role(owner: &Database, password: &str) -> Result<String> {
    let database = owner.config().get_dbname().context("the database URL names no database")?.to_owned();
    let role = node_role(&database);
    eventlog::server_wide(|| grant(owner, &role, password)).await.with_context(|| {
        format!("granting the plant node's role {role} (the database URL's user must be able to create roles)")
    })?;
    Ok(role)
}

async fn grant(owner: &Database, role: &str, password: &str) -> Result<()> {
    let mut client = owner.client().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT set_config('floorwatch.node_role', $1, true)", &[&role]).await?;
    tx.execute("SELECT set_config('floorwatch.node_password', $1, true)", &[&password]).await?;
    tx.batch_execute(include_str!("../sql/node_role.sql")).await?;
    tx.commit().await?;
    Ok(())
}

/// The node's pool: the owner's database, as the node role.
pub fn connect_as_node(owner: &Database, password: &str) -> Result<Database> {
    let database = owner.config().get_dbname().context("the database URL names no database")?;
    owner.as_role(&node_role(database), password, owner.max_connections())
}
