//! Page tokens and refresh tokens of `/query` and `/changes`.
//!
//! Both are opaque, URL-safe (`<base64url payload>.<key id>.<base64url mac>`) and MAC'd with
//! the current signing key (a key retired less than one URL lifetime ago is still accepted).
//! The payload binds the recipient, the table, the pinned version(s), a hash of every other
//! query parameter, the position, and an expiry; each misuse answers its protocol message.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ServiceError;
use crate::storage::keyring::KeyringRef;

const PAGE_PURPOSE: &str = "lakeshare-page-token-v1";
const REFRESH_PURPOSE: &str = "lakeshare-refresh-token-v1";

/// Where the next page of a query starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PageState {
    /// Table id.
    pub(crate) t: String,
    /// Recipient id.
    pub(crate) r: String,
    /// Pinned version (snapshot version, or start of a range).
    pub(crate) v: u64,
    /// End of a range (streaming / change queries).
    pub(crate) e: Option<u64>,
    /// Index of the next entry.
    pub(crate) pos: usize,
    /// Remaining `limitHint` rows.
    pub(crate) lim: Option<i64>,
    /// Version whose metaData heads every page (change queries), so pages stay identical
    /// even if the table moves on.
    #[serde(default)]
    pub(crate) m: Option<u64>,
    /// Hash of the other query parameters.
    pub(crate) h: String,
    /// Expiry, ms.
    pub(crate) exp: i64,
}

/// What a refresh token pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RefreshState {
    /// Table id.
    pub(crate) t: String,
    /// Recipient id.
    pub(crate) r: String,
    /// Pinned snapshot version.
    pub(crate) v: u64,
    /// Expiry, ms.
    pub(crate) exp: i64,
}

/// Hash of query parameters that must not change between pages.
pub(crate) fn params_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..12])
}

fn seal<T: Serialize>(
    keyring: &KeyringRef,
    purpose: &str,
    state: &T,
) -> Result<String, ServiceError> {
    let payload = serde_json::to_vec(state)
        .map_err(|e| ServiceError::Internal(format!("token encoding failed: {e}")))?;
    let ring = keyring
        .read()
        .map_err(|_| ServiceError::Unavailable("signing keys unavailable".into()))?;
    let key = ring
        .current()
        .ok_or_else(|| ServiceError::Unavailable("no signing key available".into()))?;
    let mac = key.mac(purpose, &payload);
    Ok(format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        key.id,
        URL_SAFE_NO_PAD.encode(&mac[..16])
    ))
}

fn open<T: for<'de> Deserialize<'de>>(
    keyring: &KeyringRef,
    purpose: &str,
    token: &str,
    now_ms: i64,
    grace_ms: i64,
) -> Result<T, String> {
    let mut parts = token.trim().split('.');
    let (Some(payload_b64), Some(kid), Some(mac_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed token".to_owned());
    };
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| "malformed token".to_owned())?;
    let mac = URL_SAFE_NO_PAD
        .decode(mac_b64)
        .map_err(|_| "malformed token".to_owned())?;
    let ring = keyring
        .read()
        .map_err(|_| "signing keys unavailable".to_owned())?;
    let key = ring
        .accepted(kid, now_ms, grace_ms)
        .ok_or_else(|| "unknown or retired signing key".to_owned())?;
    if !crate::domain::token::hashes_equal(&key.mac(purpose, &payload)[..16], &mac) {
        return Err("signature mismatch".to_owned());
    }
    serde_json::from_slice(&payload).map_err(|e| format!("invalid payload: {e}"))
}

/// Mints a page token.
pub(crate) fn seal_page(keyring: &KeyringRef, state: &PageState) -> Result<String, ServiceError> {
    seal(keyring, PAGE_PURPOSE, state)
}

/// Mints a refresh token.
pub(crate) fn seal_refresh(
    keyring: &KeyringRef,
    state: &RefreshState,
) -> Result<String, ServiceError> {
    seal(keyring, REFRESH_PURPOSE, state)
}

fn bad(msg: &str) -> ServiceError {
    ServiceError::InvalidParameter(msg.to_owned())
}

/// Checks a page token against the request it continues.
#[allow(clippy::too_many_arguments)]
pub(crate) fn open_page(
    keyring: &KeyringRef,
    token: &str,
    recipient: &str,
    table: &str,
    params: &str,
    now_ms: i64,
    grace_ms: i64,
) -> Result<PageState, ServiceError> {
    let state: PageState = open(keyring, PAGE_PURPOSE, token, now_ms, grace_ms)
        .map_err(|e| bad(&format!("Error decoding the page token: {e}")))?;
    if state.r != recipient {
        return Err(bad(
            "Error decoding the page token: it was issued to another caller",
        ));
    }
    if state.t != table {
        return Err(bad(
            "The table specified in the page token does not match the table being queried.",
        ));
    }
    if state.h != params {
        return Err(bad(
            "Query parameter mismatch detected for the next page query. The query parameter \
             cannot change when querying the next page results.",
        ));
    }
    if state.exp <= now_ms {
        return Err(bad("The page token has expired. Please restart the query."));
    }
    Ok(state)
}

/// Checks a refresh token.
pub(crate) fn open_refresh(
    keyring: &KeyringRef,
    token: &str,
    recipient: &str,
    table: &str,
    now_ms: i64,
    grace_ms: i64,
) -> Result<RefreshState, ServiceError> {
    let state: RefreshState = open(keyring, REFRESH_PURPOSE, token, now_ms, grace_ms)
        .map_err(|e| bad(&format!("Error decoding refresh token: {e}")))?;
    if state.r != recipient {
        return Err(bad(
            "Error decoding refresh token: it was issued to another caller",
        ));
    }
    if state.t != table {
        return Err(bad(
            "The table specified in the refresh token does not match the table being queried.",
        ));
    }
    if state.exp <= now_ms {
        return Err(bad(
            "The refresh token has expired. Please restart the query.",
        ));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, RwLock};

    use super::*;
    use crate::storage::keyring::{Keyring, SigningKey};

    fn ring() -> KeyringRef {
        Arc::new(RwLock::new(Keyring::new(vec![SigningKey::generate(0)])))
    }

    fn state() -> PageState {
        PageState {
            t: "t1".into(),
            r: "r1".into(),
            v: 3,
            e: None,
            pos: 7,
            lim: None,
            m: None,
            h: params_hash(&["a", "b"]),
            exp: 1000,
        }
    }

    #[test]
    fn page_tokens_round_trip_and_reject_each_misuse() {
        let k = ring();
        let tok = seal_page(&k, &state()).unwrap_or_default();
        assert!(
            tok.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        );
        let h = params_hash(&["a", "b"]);
        assert_eq!(
            open_page(&k, &tok, "r1", "t1", &h, 10, 0).ok(),
            Some(state())
        );
        let msg =
            |r: Result<PageState, ServiceError>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg(open_page(&k, &tok, "r1", "t2", &h, 10, 0)).contains("does not match the table")
        );
        assert!(
            msg(open_page(&k, &tok, "r1", "t1", "x", 10, 0)).contains("Query parameter mismatch")
        );
        assert!(msg(open_page(&k, &tok, "r1", "t1", &h, 1000, 0)).contains("has expired"));
        assert!(
            msg(open_page(&k, &tok, "r2", "t1", &h, 10, 0))
                .contains("Error decoding the page token")
        );
        let mut tampered = tok.clone();
        tampered.replace_range(0..1, if tok.starts_with('e') { "f" } else { "e" });
        assert!(msg(open_page(&k, &tampered, "r1", "t1", &h, 10, 0)).contains("Error decoding"));
        assert!(msg(open_page(&k, "nope", "r1", "t1", &h, 10, 0)).contains("Error decoding"));
        // A refresh token is not a page token.
        let refresh = seal_refresh(
            &k,
            &RefreshState {
                t: "t1".into(),
                r: "r1".into(),
                v: 1,
                exp: 99,
            },
        )
        .unwrap_or_default();
        assert!(msg(open_page(&k, &refresh, "r1", "t1", &h, 10, 0)).contains("Error decoding"));
        assert!(open_refresh(&k, &refresh, "r1", "t1", 10, 0).is_ok());
        assert!(open_refresh(&k, &refresh, "r1", "t1", 99, 0).is_err());
    }
}
