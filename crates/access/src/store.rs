//! Credentials in PostgreSQL (`access.credentials`), and an authenticator that remembers
//! recent answers for a few seconds so a busy API does not read the table per request.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use eventlog::{Database, GenericClient};

use crate::token::{new_token, parse_token, secret_matches};
use crate::{AccessError, Credential, Role, Scope, check_new};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Creates the credentials table in `db` (idempotent).
pub async fn migrate(db: &Database) -> anyhow::Result<()> {
    db.run_migrations(embedded::migrations::runner(), "access_schema_history").await
}

/// Makes a credential; returns it with its token, which exists nowhere else afterwards.
pub async fn create(db: &Database, role: Role, scope: Scope, label: &str) -> Result<(Credential, String), AccessError> {
    check_new(role, &scope, label)?;
    let token = new_token()?;
    let plants: Option<Vec<i16>> = scope.plants().map(|p| p.iter().map(|&n| n as i16).collect());
    let client = db.client().await?;
    let row = client
        .query_one(
            include_str!("../sql/insert_credential.sql"),
            &[&token.id, &token.secret_sha256, &role.as_str(), &plants, &label.trim()],
        )
        .await?;
    let credential = Credential {
        id: token.id,
        role,
        scope,
        label: label.trim().to_owned(),
        created_at: row.get(0),
        revoked_at: None,
    };
    Ok((credential, token.token))
}

/// The credential `token` proves, if any: `None` for a malformed, unknown or wrong token
/// (a revoked one is returned, marked revoked, so the caller can say so).
pub async fn authenticate(client: &impl GenericClient, token: &str) -> Result<Option<Credential>, AccessError> {
    let Some((id, secret)) = parse_token(token) else { return Ok(None) };
    let stmt = client.prepare_cached(include_str!("../sql/find_credential.sql")).await?;
    let Some(row) = client.query_opt(&stmt, &[&id]).await? else { return Ok(None) };
    let stored: String = row.get(1);
    if !secret_matches(secret, &stored) {
        return Ok(None);
    }
    from_row(&row).map(Some)
}

/// Revokes a credential; false when there is no such (unrevoked) credential.
pub async fn revoke(db: &Database, id: &str) -> Result<bool, AccessError> {
    let client = db.client().await?;
    Ok(client.execute(include_str!("../sql/revoke_credential.sql"), &[&id]).await? == 1)
}

/// Every credential, oldest first.
pub async fn list(db: &Database) -> Result<Vec<Credential>, AccessError> {
    let client = db.client().await?;
    client.query(include_str!("../sql/list_credentials.sql"), &[]).await?.iter().map(from_row).collect()
}

fn from_row(row: &tokio_postgres::Row) -> Result<Credential, AccessError> {
    let id: String = row.get(0);
    let corrupt = |reason: String| AccessError::Corrupt { id: id.clone(), reason };
    let role: String = row.get(2);
    let role = Role::parse(&role).ok_or_else(|| corrupt(format!("unknown role {role:?}")))?;
    let plants: Option<Vec<i16>> = row.get(3);
    let scope = match plants {
        None => Scope::AllPlants,
        Some(p) => Scope::Plants(
            p.into_iter()
                .map(|n| u16::try_from(n).map_err(|_| corrupt(format!("plant {n}"))))
                .collect::<Result<BTreeSet<u16>, _>>()?,
        ),
    };
    let created_at: DateTime<Utc> = row.get(5);
    Ok(Credential { id: id.clone(), role, scope, label: row.get(4), created_at, revoked_at: row.get(6) })
}

/// Authenticates bearer tokens against one database, remembering each answer (found or
/// not) for `ttl`: a revocation takes effect within that time.
#[derive(Debug)]
pub struct Authenticator {
    db: Database,
    ttl: Duration,
    recent: Mutex<HashMap<String, (Instant, Option<Credential>)>>,
}

/// Answers remembered at most; past it the memory starts over (a flood of made-up
/// tokens must not grow it without bound).
const MAX_REMEMBERED: usize = 10_000;

impl Authenticator {
    pub fn new(db: Database, ttl: Duration) -> Self {
        Authenticator { db, ttl, recent: Mutex::new(HashMap::new()) }
    }

    /// The credential `token` proves, if any (see [`authenticate`]).
    pub async fn authenticate(&self, token: &str) -> Result<Option<Credential>, AccessError> {
        // Only well-formed tokens are remembered, keyed by the hash of the whole token.
        if parse_token(token).is_none() {
            return Ok(None);
        }
        let key = crate::hash_secret(token);
        if let Ok(recent) = self.recent.lock()
            && let Some((at, answer)) = recent.get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(answer.clone());
        }
        let client = self.db.client().await?;
        let answer = authenticate(&client, token).await?;
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() >= MAX_REMEMBERED {
                recent.clear();
            }
            recent.insert(key, (Instant::now(), answer.clone()));
        }
        Ok(answer)
    }
}
