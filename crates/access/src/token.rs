//! The token format: `fwt_<id>_<secret>`, the id 16 hex digits, the secret 64.

use sha2::Digest;
use subtle::ConstantTimeEq;

use crate::AccessError;

/// Every token starts with this, so a leaked one is easy to recognise (and to scan for).
pub const TOKEN_PREFIX: &str = "fwt_";

const ID_HEX: usize = 16;
const SECRET_HEX: usize = 64;

/// A token just made: show `token` once, store `id` and `secret_sha256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub id: String,
    pub secret_sha256: String,
    pub token: String,
}

/// A new random token.
pub fn new_token() -> Result<NewToken, AccessError> {
    let mut bytes = [0u8; (ID_HEX + SECRET_HEX) / 2];
    getrandom::fill(&mut bytes).map_err(|e| AccessError::Random(e.to_string()))?;
    let hex = to_hex(&bytes);
    let (id, secret) = hex.split_at(ID_HEX);
    Ok(NewToken {
        id: id.to_owned(),
        secret_sha256: hash_secret(secret),
        token: format!("{TOKEN_PREFIX}{id}_{secret}"),
    })
}

/// The id and secret of a well-formed token; `None` for anything else.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.strip_prefix(TOKEN_PREFIX)?.split_once('_')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (hex(id, ID_HEX) && hex(secret, SECRET_HEX)).then_some((id, secret))
}

/// SHA-256 of a secret, hex.
pub fn hash_secret(secret: &str) -> String {
    to_hex(&sha2::Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` hashes to `stored` (constant time in the hash).
pub(crate) fn secret_matches(secret: &str, stored: &str) -> bool {
    let presented = hash_secret(secret);
    presented.len() == stored.len() && bool::from(presented.as_bytes().ct_eq(stored.as_bytes()))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_parses_and_its_secret_matches_only_its_hash() {
        let t = new_token().expect("randomness");
        let (id, secret) = parse_token(&t.token).expect("well formed");
        assert_eq!(id, t.id);
        assert!(secret_matches(secret, &t.secret_sha256));
        assert!(!t.token.contains(&t.secret_sha256));
        let other = new_token().expect("randomness");
        assert_ne!(other.token, t.token);
        assert!(!secret_matches(secret, &other.secret_sha256));
    }

    #[test]
    fn malformed_tokens_are_not_tokens() {
        let good = format!("fwt_{}_{}", "a".repeat(16), "0".repeat(64));
        assert!(parse_token(&good).is_some());
        for bad in [
            String::new(),
            "fwt_".into(),
            good.replace("fwt_", "fwx_"),
            good.replace('a', "A"),
            format!("fwt_{}_{}", "a".repeat(15), "0".repeat(64)),
            format!("fwt_{}_{}", "a".repeat(16), "0".repeat(65)),
            format!("fwt_{}_{}\0", "a".repeat(16), "0".repeat(63)),
            format!("fwt_{}_{}", "é".repeat(8), "0".repeat(64)),
            "x".repeat(100_000),
        ] {
            assert!(parse_token(&bad).is_none(), "{bad:?}");
        }
    }
}
