//! Secrets of the plants run from this data directory: the desktop reader's password,
//! and per plant the gateway tokens, the password of the node's own database role, and
//! the tokens of the demo's people (the simulated
//! maintenance crew, the demo supervisor; their credentials live hashed in the plant's
//! database, see `people`), and the local cloud node's credentials (each plant's
//! forwarder, a manager's for the desktop app). Created on first use and kept in `DATA_DIR/secrets.json`
//! (mode 0600).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use layout::Layout;
use plant::GatewayTokens;
use plant::node::NodeSecrets;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PlantSecrets {
    pub gateway_tokens: GatewayTokens,
    /// The simulated maintenance crew's token (records the simulator's work orders).
    #[serde(default)]
    pub crew_token: String,
    /// The demo supervisor's token (the desktop app of the demo signs in with it).
    #[serde(default)]
    pub supervisor_token: String,
    /// The password of the plant node's own database role.
    #[serde(default)]
    pub node_password: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Secrets {
    pub reader_password: String,
    pub plants: BTreeMap<u16, PlantSecrets>,
    /// Credentials of the cloud node this data directory runs (made by `floorwatch up`).
    #[serde(default)]
    pub cloud: CloudSecrets,
}

/// Tokens of the local cloud node's credentials: each plant's forwarder, and a manager's
/// for the desktop app. Their hashes are in the cloud's database.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CloudSecrets {
    #[serde(default)]
    pub forwarder_tokens: BTreeMap<u16, String>,
    #[serde(default)]
    pub manager_token: String,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets.json")
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness for secrets: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl Secrets {
    /// Loads the secrets, creating whatever is missing for `plants` of `layout`.
    pub fn load_or_create(data_dir: &Path, layout: &Layout, plants: &[u16]) -> Result<Secrets> {
        let file = path(data_dir);
        let mut secrets: Secrets = match std::fs::read_to_string(&file) {
            Ok(text) => serde_json::from_str(&text).with_context(|| format!("reading {}", file.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Secrets::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        };
        let before = serde_json::to_string(&secrets)?;
        if secrets.reader_password.is_empty() {
            secrets.reader_password = random_hex(24)?;
        }
        for &n in plants {
            let entry = secrets.plants.entry(n).or_default();
            entry.gateway_tokens = GatewayTokens::issue(layout, n, &entry.gateway_tokens)?;
            if entry.node_password.is_empty() {
                entry.node_password = random_hex(24)?;
            }
        }
        if serde_json::to_string(&secrets)? != before {
            secrets.save(data_dir)?;
        }
        Ok(secrets)
    }

    /// The secrets file as it is (an error when there is none).
    pub fn load_existing(data_dir: &Path) -> Result<Secrets> {
        let file = path(data_dir);
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", file.display()))
    }

    /// Writes the secrets file (mode 0600), replacing it whole and atomically.
    pub fn save(&self, data_dir: &Path) -> Result<()> {
        let file = path(data_dir);
        std::fs::create_dir_all(data_dir)?;
        let tmp = file.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(serde_json::to_string_pretty(self)?.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &file)?;
        Ok(())
    }

    pub fn node(&self, plant: u16) -> Result<NodeSecrets> {
        let p = self.plants.get(&plant).with_context(|| format!("no secrets for plant {plant}"))?;
        Ok(NodeSecrets {
            gateway_tokens: p.gateway_tokens.clone(),
            reader_password: self.reader_password.clone(),
            node_password: p.node_password.clone(),
        })
    }
}
