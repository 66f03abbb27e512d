//! Opaque, URL-safe, MAC'd page tokens for the list endpoints.
//!
//! Format: `<key id>.<base64url payload>.<base64url mac>`; the payload binds the listing
//! (kind and parent names), the recipient, and the next offset. A forged, altered or foreign
//! token fails verification and is answered 400.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::ServiceError;
use crate::storage::keyring::KeyringRef;

const PURPOSE: &str = "lakeshare-list-page-v1";

fn invalid() -> ServiceError {
    ServiceError::InvalidParameter(
        "invalid 'pageToken': pass the nextPageToken of the previous page of the same listing, \
         unchanged"
            .to_owned(),
    )
}

/// Mints a token for `offset` in listing `scope` (which includes the recipient).
pub(crate) fn mint(
    keyring: &KeyringRef,
    scope: &str,
    offset: usize,
) -> Result<String, ServiceError> {
    let ring = keyring
        .read()
        .map_err(|_| ServiceError::Unavailable("signing keys unavailable".into()))?;
    let key = ring
        .current()
        .ok_or_else(|| ServiceError::Unavailable("no signing key available".into()))?;
    let payload = format!("{offset}\n{scope}");
    let mac = key.mac(PURPOSE, payload.as_bytes());
    Ok(format!(
        "{}.{}.{}",
        key.id,
        URL_SAFE_NO_PAD.encode(payload.as_bytes()),
        URL_SAFE_NO_PAD.encode(&mac[..16])
    ))
}

/// Verifies a token for listing `scope`; returns the offset.
pub(crate) fn verify(
    keyring: &KeyringRef,
    scope: &str,
    token: &str,
    now_ms: i64,
    grace_ms: i64,
) -> Result<usize, ServiceError> {
    let mut parts = token.split('.');
    let (Some(kid), Some(payload_b64), Some(mac_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| invalid())?;
    let mac = URL_SAFE_NO_PAD.decode(mac_b64).map_err(|_| invalid())?;
    let ring = keyring.read().map_err(|_| invalid())?;
    let key = ring.accepted(kid, now_ms, grace_ms).ok_or_else(invalid)?;
    let expected = key.mac(PURPOSE, &payload);
    if !crate::domain::token::hashes_equal(&expected[..16], &mac) {
        return Err(invalid());
    }
    let text = String::from_utf8(payload).map_err(|_| invalid())?;
    let (offset, token_scope) = text.split_once('\n').ok_or_else(invalid)?;
    if token_scope != scope {
        return Err(invalid());
    }
    offset.parse().map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, RwLock};

    use super::*;
    use crate::storage::keyring::{Keyring, SigningKey};

    #[test]
    fn round_trip_and_tamper() {
        let ring: KeyringRef = Arc::new(RwLock::new(Keyring::new(vec![SigningKey::generate(0)])));
        let t = mint(&ring, "shares\nr1", 3).unwrap_or_default();
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        );
        assert_eq!(verify(&ring, "shares\nr1", &t, 0, 0).ok(), Some(3));
        assert!(verify(&ring, "shares\nr2", &t, 0, 0).is_err());
        let mut forged = t.clone();
        forged.pop();
        forged.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert!(verify(&ring, "shares\nr1", &forged, 0, 0).is_err());
        assert!(verify(&ring, "shares\nr1", "garbage", 0, 0).is_err());
    }
}
