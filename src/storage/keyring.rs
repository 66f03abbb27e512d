//! Signing keys for Lakeshare-signed file URLs and MAC'd tokens.
//!
//! Keys are generated and persisted in the state store on first start. Rotation adds a new
//! current key and retires the old one, which stays accepted for one URL lifetime so that
//! outstanding URLs keep working (no downtime).

use std::sync::{Arc, RwLock};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// One HMAC key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// Short public key id, carried in URLs and tokens.
    pub id: String,
    /// 256-bit secret.
    pub secret: Vec<u8>,
    /// Creation time (ms).
    pub created_at_ms: i64,
    /// When it stopped being the current key (ms).
    pub retired_at_ms: Option<i64>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("created_at_ms", &self.created_at_ms)
            .field("retired_at_ms", &self.retired_at_ms)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a new random key.
    pub fn generate(now_ms: i64) -> Self {
        let mut secret = vec![0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let mut id = [0u8; 4];
        rand::rng().fill_bytes(&mut id);
        Self {
            id: hex::encode(id),
            secret,
            created_at_ms: now_ms,
            retired_at_ms: None,
        }
    }

    /// HMAC-SHA256 of `msg` under this key, with a purpose label for domain separation.
    pub fn mac(&self, purpose: &str, msg: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.secret) {
            Ok(m) => m,
            Err(_) => return [0u8; 32],
        };
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(msg);
        mac.finalize().into_bytes().into()
    }
}

/// The set of keys in use.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<SigningKey>,
}

impl Keyring {
    /// Builds a keyring from stored keys.
    pub fn new(keys: Vec<SigningKey>) -> Self {
        Self { keys }
    }

    /// The key new signatures use: the newest key that is not retired.
    pub fn current(&self) -> Option<&SigningKey> {
        self.keys
            .iter()
            .filter(|k| k.retired_at_ms.is_none())
            .max_by_key(|k| k.created_at_ms)
    }

    /// The key with id `kid` if it is still accepted at `now_ms`: the current key, or a key
    /// retired less than `grace_ms` ago.
    pub fn accepted(&self, kid: &str, now_ms: i64, grace_ms: i64) -> Option<&SigningKey> {
        self.keys.iter().find(|k| {
            k.id == kid
                && match k.retired_at_ms {
                    None => true,
                    Some(retired) => now_ms < retired.saturating_add(grace_ms),
                }
        })
    }
}

/// Shared, reloadable keyring.
pub type KeyringRef = Arc<RwLock<Keyring>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retired_key_is_accepted_for_one_grace_period() {
        let mut old = SigningKey::generate(0);
        old.retired_at_ms = Some(1_000);
        let new = SigningKey::generate(1_000);
        let ring = Keyring::new(vec![old.clone(), new.clone()]);
        assert_eq!(ring.current().map(|k| k.id.clone()), Some(new.id.clone()));
        assert!(ring.accepted(&old.id, 1_500, 3_600_000).is_some());
        assert!(
            ring.accepted(&old.id, 1_000 + 3_600_000, 3_600_000)
                .is_none()
        );
        assert!(ring.accepted("nope", 0, 10).is_none());
        assert_ne!(old.mac("a", b"x"), new.mac("a", b"x"));
        assert_ne!(new.mac("a", b"x"), new.mac("b", b"x"));
    }
}
