//! Who may do what: credentials (bearer tokens) with a role and a plant scope.
//!
//! A token is `fwt_<id>_<secret>`: the id finds the credential, the secret proves it.
//! Only the SHA-256 of the secret is stored, so the database never holds a usable
//! token; the token is shown once, when it is made. A plain hash (not a slow password
//! hash) is enough because the secret is 256 random bits, not something a person chose:
//! there is nothing to guess. Comparison is in constant time.
//!
//! Roles say what a credential may do ([`Role::grants`]), scopes on which plants
//! ([`Scope`]); [`Credential::authorize`] checks both. The same credentials serve the
//! cloud's query API (viewers, managers, forwarders, admins) and people at a plant
//! (maintenance, supervisors): a plant keeps its own `access.credentials` table by
//! applying [`migrate`] to its database.
//!
//! This crate decides nothing from a request body: callers pass what authentication
//! established.

mod store;
mod token;

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use store::{Authenticator, authenticate, create, list, migrate, revoke};
pub use token::{NewToken, TOKEN_PREFIX, hash_secret, new_token, parse_token};

/// What a credential is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads its plants.
    Viewer,
    /// Reads, and schedules and records service, at its plants.
    Maintenance,
    /// Reads, records service, and acknowledges, shelves and annotates anomalies at its plants.
    Supervisor,
    /// Reads every plant (the cloud's cross-plant views).
    Manager,
    /// Manages credentials; reads no plant data.
    Admin,
    /// A plant's store-and-forward link: ships that one plant's log to the cloud.
    Forwarder,
}

/// Something a credential may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    ReadPlantData,
    RecordMaintenance,
    ActOnAnomalies,
    ForwardPlantLog,
    ManageCredentials,
}

impl Role {
    pub const ALL: [Role; 6] =
        [Role::Viewer, Role::Maintenance, Role::Supervisor, Role::Manager, Role::Admin, Role::Forwarder];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Maintenance => "maintenance",
            Role::Supervisor => "supervisor",
            Role::Manager => "manager",
            Role::Admin => "admin",
            Role::Forwarder => "forwarder",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role may do `permission` (on the plants of its scope).
    pub fn grants(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Viewer | Role::Manager => permission == ReadPlantData,
            Role::Maintenance => matches!(permission, ReadPlantData | RecordMaintenance),
            Role::Supervisor => matches!(permission, ReadPlantData | RecordMaintenance | ActOnAnomalies),
            Role::Admin => permission == ManageCredentials,
            Role::Forwarder => permission == ForwardPlantLog,
        }
    }

    /// What scope the role admits: managers and admins act on every plant, a forwarder
    /// on exactly one, everyone else on the plants named.
    fn check_scope(self, scope: &Scope) -> Result<(), AccessError> {
        let bad = |why: &str| Err(AccessError::Scope(format!("a {} credential {why}", self.as_str())));
        match (self, scope) {
            (Role::Manager | Role::Admin, Scope::AllPlants) => Ok(()),
            (Role::Manager | Role::Admin, Scope::Plants(_)) => bad("covers every plant (give no plant)"),
            (_, Scope::AllPlants) => bad("needs the plants it is for (--plant N)"),
            (Role::Forwarder, Scope::Plants(p)) if p.len() != 1 => bad("is for exactly one plant"),
            (_, Scope::Plants(p)) if p.is_empty() => bad("needs at least one plant"),
            (_, Scope::Plants(p)) if p.iter().any(|&n| n == 0 || n > MAX_PLANT) => {
                bad(&format!("names plants 1..={MAX_PLANT}"))
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Highest plant number a scope may name.
pub const MAX_PLANT: u16 = 9_999;

/// The plants a credential may act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    AllPlants,
    Plants(BTreeSet<u16>),
}

impl Scope {
    pub fn plant(n: u16) -> Scope {
        Scope::Plants(BTreeSet::from([n]))
    }

    pub fn covers(&self, plant: u16) -> bool {
        match self {
            Scope::AllPlants => true,
            Scope::Plants(p) => p.contains(&plant),
        }
    }

    /// The plants named, or `None` for every plant.
    pub fn plants(&self) -> Option<&BTreeSet<u16>> {
        match self {
            Scope::AllPlants => None,
            Scope::Plants(p) => Some(p),
        }
    }
}

/// A stored credential (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credential {
    pub id: String,
    pub role: Role,
    pub scope: Scope,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Why an authenticated credential may not do something.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Denied {
    #[error("a {role} credential may not do this")]
    Role { role: Role },
    #[error("this credential is not for plant {plant}")]
    Plant { plant: u16 },
    #[error("this credential was revoked")]
    Revoked,
}

impl Credential {
    /// Whether this credential may do `permission` on `plant` (`None`: on nothing
    /// plant-specific, such as listing what it may see).
    pub fn authorize(&self, permission: Permission, plant: Option<u16>) -> Result<(), Denied> {
        if self.revoked_at.is_some() {
            return Err(Denied::Revoked);
        }
        if !self.role.grants(permission) {
            return Err(Denied::Role { role: self.role });
        }
        match plant {
            Some(p) if !self.scope.covers(p) => Err(Denied::Plant { plant: p }),
            _ => Ok(()),
        }
    }

    /// Who acted, as written into events and audit trails: the label and the credential.
    pub fn actor(&self) -> String {
        format!("{} ({})", self.label, self.id)
    }
}

/// Errors making or reading credentials.
#[derive(Debug, Error)]
pub enum AccessError {
    #[error("{0}")]
    Scope(String),
    #[error("the label must be 1 to 100 printable characters")]
    Label,
    #[error("no randomness for a token: {0}")]
    Random(String),
    #[error("database error on credentials: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("stored credential {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl AccessError {
    /// Whether the database (not the request) is the problem: answer 503, retry.
    pub fn is_transient(&self) -> bool {
        matches!(self, AccessError::Database(_) | AccessError::Other(_))
    }
}

/// Checks a role, scope and label before a credential is made.
pub fn check_new(role: Role, scope: &Scope, label: &str) -> Result<(), AccessError> {
    role.check_scope(scope)?;
    let label_ok = !label.trim().is_empty() && label.chars().count() <= 100 && !label.chars().any(char::is_control);
    if !label_ok {
        return Err(AccessError::Label);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(role: Role, scope: Scope) -> Credential {
        Credential {
            id: "a1".into(),
            role,
            scope,
            label: "x".into(),
            created_at: DateTime::UNIX_EPOCH,
            revoked_at: None,
        }
    }

    #[test]
    fn roles_grant_what_they_say_and_no_more() {
        use Permission::*;
        let all = [ReadPlantData, RecordMaintenance, ActOnAnomalies, ForwardPlantLog, ManageCredentials];
        let granted = |r: Role| all.into_iter().filter(|p| r.grants(*p)).collect::<Vec<_>>();
        assert_eq!(granted(Role::Viewer), [ReadPlantData]);
        assert_eq!(granted(Role::Manager), [ReadPlantData]);
        assert_eq!(granted(Role::Maintenance), [ReadPlantData, RecordMaintenance]);
        assert_eq!(granted(Role::Supervisor), [ReadPlantData, RecordMaintenance, ActOnAnomalies]);
        assert_eq!(granted(Role::Admin), [ManageCredentials]);
        assert_eq!(granted(Role::Forwarder), [ForwardPlantLog]);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn scopes_must_fit_the_role() {
        let two = Scope::Plants(BTreeSet::from([1, 2]));
        assert!(check_new(Role::Manager, &Scope::AllPlants, "Mia").is_ok());
        assert!(check_new(Role::Manager, &Scope::plant(1), "Mia").is_err());
        assert!(check_new(Role::Admin, &Scope::AllPlants, "ops").is_ok());
        assert!(check_new(Role::Viewer, &two, "Vic").is_ok());
        assert!(check_new(Role::Viewer, &Scope::AllPlants, "Vic").is_err());
        assert!(check_new(Role::Viewer, &Scope::Plants(BTreeSet::new()), "Vic").is_err());
        assert!(check_new(Role::Forwarder, &Scope::plant(3), "forwarder P3").is_ok());
        assert!(check_new(Role::Forwarder, &two, "forwarder").is_err());
        assert!(check_new(Role::Viewer, &Scope::plant(0), "Vic").is_err());
        for label in ["", "  ", "tab\there", &"x".repeat(101)] {
            assert!(matches!(check_new(Role::Viewer, &Scope::plant(1), label), Err(AccessError::Label)), "{label:?}");
        }
    }

    #[test]
    fn authorization_needs_the_role_the_plant_and_no_revocation() {
        let viewer = credential(Role::Viewer, Scope::plant(2));
        assert_eq!(viewer.authorize(Permission::ReadPlantData, Some(2)), Ok(()));
        assert_eq!(viewer.authorize(Permission::ReadPlantData, Some(3)), Err(Denied::Plant { plant: 3 }));
        assert_eq!(viewer.authorize(Permission::ReadPlantData, None), Ok(()));
        assert_eq!(viewer.authorize(Permission::ForwardPlantLog, Some(2)), Err(Denied::Role { role: Role::Viewer }));
        let manager = credential(Role::Manager, Scope::AllPlants);
        assert_eq!(manager.authorize(Permission::ReadPlantData, Some(5)), Ok(()));
        let forwarder = credential(Role::Forwarder, Scope::plant(1));
        assert_eq!(forwarder.authorize(Permission::ForwardPlantLog, Some(1)), Ok(()));
        assert_eq!(forwarder.authorize(Permission::ForwardPlantLog, Some(2)), Err(Denied::Plant { plant: 2 }));
        assert!(forwarder.authorize(Permission::ReadPlantData, Some(1)).is_err());
        let revoked = Credential { revoked_at: Some(DateTime::UNIX_EPOCH), ..manager };
        assert_eq!(revoked.authorize(Permission::ReadPlantData, Some(1)), Err(Denied::Revoked));
    }
}
