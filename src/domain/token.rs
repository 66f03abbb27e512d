//! Recipient bearer tokens: generation, hashing and display prefixes.
//!
//! Tokens carry 256 random bits. Only the SHA-256 hash and a short display prefix are stored;
//! a fast hash is right for high-entropy secrets.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of every Lakeshare recipient token, so leaked tokens are easy to recognise.
pub const TOKEN_PREFIX: &str = "lks_";

/// A freshly generated token. The secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// The bearer token.
    pub secret: String,
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// Short, non-secret display prefix.
    pub display_prefix: String,
}

/// Generates a token with 256 bits from the OS random generator.
pub fn generate() -> NewToken {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    from_secret(&secret)
}

/// Hashes an existing secret (used for the reference-style configured bearer token).
pub fn from_secret(secret: &str) -> NewToken {
    NewToken {
        secret: secret.to_owned(),
        hash: hash(secret),
        display_prefix: display_prefix(secret),
    }
}

/// SHA-256 of a presented token.
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The first characters of a token, safe to show and log.
pub fn display_prefix(secret: &str) -> String {
    secret.chars().take(8).collect()
}

/// Constant-time equality of two hashes.
pub fn hashes_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hash_consistently() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.len() >= TOKEN_PREFIX.len() + 43);
        assert!(hashes_equal(&a.hash, &hash(&a.secret)));
        assert!(!hashes_equal(&a.hash, &b.hash));
        assert_eq!(a.display_prefix.len(), 8);
    }
}
