//! Per-gateway bearer tokens: which gateway may upload, checked in constant time.

use std::collections::BTreeMap;

use layout::Layout;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Gateway id (`P1-L03`) → its secret token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GatewayTokens(BTreeMap<String, String>);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no randomness available for gateway tokens: {0}")]
    Random(String),
    #[error("gateway tokens file: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("token of gateway {0} must be 32 to 128 printable characters")]
    Weak(String),
}

impl GatewayTokens {
    /// New random tokens for every gateway of plant `plant_number`, keeping the tokens
    /// of `existing` for gateways that already have one.
    pub fn issue(layout: &Layout, plant_number: u16, existing: &GatewayTokens) -> Result<GatewayTokens, TokenError> {
        let mut tokens = BTreeMap::new();
        let Some(plant) = layout.plant_by_number(plant_number) else { return Ok(GatewayTokens(tokens)) };
        for line in &layout.lines()[plant.lines.clone()] {
            let token = match existing.0.get(&line.id) {
                Some(t) => t.clone(),
                None => random_token()?,
            };
            tokens.insert(line.id.clone(), token);
        }
        Ok(GatewayTokens(tokens))
    }

    pub fn from_json(text: &str) -> Result<GatewayTokens, TokenError> {
        let tokens: GatewayTokens = serde_json::from_str(text)?;
        for (gateway, token) in &tokens.0 {
            if !(32..=128).contains(&token.len()) || !token.chars().all(|c| c.is_ascii_graphic()) {
                return Err(TokenError::Weak(gateway.clone()));
            }
        }
        Ok(tokens)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a map of strings serialises")
    }

    /// Every gateway with its token.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn get(&self, gateway: &str) -> Option<&str> {
        self.0.get(gateway).map(String::as_str)
    }

    /// The gateway whose token `presented` is, if any. Every gateway's token is compared
    /// (each in constant time), so the answer's timing does not say which one matched.
    pub fn gateway_of(&self, presented: &str) -> Option<String> {
        let mut found = None;
        for (gateway, token) in &self.0 {
            let same = token.len() == presented.len() && bool::from(token.as_bytes().ct_eq(presented.as_bytes()));
            if same && found.is_none() {
                found = Some(gateway.clone());
            }
        }
        found
    }

    /// Whether `presented` is `gateway`'s token (constant time in the token's bytes).
    pub fn verify(&self, gateway: &str, presented: &str) -> bool {
        self.0
            .get(gateway)
            .is_some_and(|t| t.len() == presented.len() && bool::from(t.as_bytes().ct_eq(presented.as_bytes())))
    }
}

fn random_token() -> Result<String, TokenError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
