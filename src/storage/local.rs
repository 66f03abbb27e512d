//! Lakeshare-signed URLs for tables on local disk, and their verification.
//!
//! A URL names the file (base64url of its log path, so the URL path holds no percent-escapes
//! that HTTP clients might re-normalise), the table, the recipient, an expiry and a key id, and
//! carries an HMAC over all of them. `sp=r` marks it as pre-signed for the delta-format
//! reader, which only fetches URLs that carry such a marker.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::StorageError;
use super::keyring::{KeyringRef, SigningKey};
use super::signer::{SignContext, SignedUrl, UrlSigner};

const PURPOSE: &str = "lakeshare-file-url-v1";

/// Signs URLs that point at this server's `/files` endpoint.
#[derive(Debug, Clone)]
pub struct LocalUrlSigner {
    keyring: KeyringRef,
    ttl_ms: i64,
}

impl LocalUrlSigner {
    /// A signer using `keyring`, issuing URLs valid for `ttl_ms`.
    pub fn new(keyring: KeyringRef, ttl_ms: i64) -> Self {
        Self { keyring, ttl_ms }
    }
}

/// The claims carried by a file URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUrlClaims {
    /// Path as written in the Delta log.
    pub log_path: String,
    /// Table key.
    pub table_key: String,
    /// Recipient id.
    pub recipient_id: String,
    /// Expiry, seconds since the epoch.
    pub expires_at_s: i64,
    /// Key id.
    pub key_id: String,
}

fn payload(c: &FileUrlClaims) -> Vec<u8> {
    format!(
        "{}\n{}\n{}\n{}\n{}",
        c.table_key, c.log_path, c.recipient_id, c.expires_at_s, c.key_id
    )
    .into_bytes()
}

fn signature(key: &SigningKey, c: &FileUrlClaims) -> String {
    hex::encode(key.mac(PURPOSE, &payload(c)))
}

/// Encodes a log path for the URL path.
pub fn encode_path(log_path: &str) -> String {
    URL_SAFE_NO_PAD.encode(log_path.as_bytes())
}

/// Decodes a URL path segment back into a log path.
pub fn decode_path(segment: &str) -> Result<String, StorageError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| StorageError::Forbidden("malformed file reference".to_owned()))?;
    String::from_utf8(bytes).map_err(|_| StorageError::Forbidden("malformed file reference".into()))
}

/// The file-name segment of a file URL: the log path's base name with anything but
/// `[A-Za-z0-9._-]` replaced, so the URL needs no escaping (clients look at the extension).
pub fn display_name(log_path: &str) -> String {
    let base = log_path.rsplit('/').next().unwrap_or(log_path);
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[async_trait::async_trait]
impl UrlSigner for LocalUrlSigner {
    async fn sign_batch(
        &self,
        ctx: &SignContext<'_>,
        log_paths: &[&str],
    ) -> Result<Vec<SignedUrl>, StorageError> {
        let ring = self
            .keyring
            .read()
            .map_err(|_| StorageError::NoSigningKey)?;
        let key = ring.current().ok_or(StorageError::NoSigningKey)?;
        let expires_at_ms = ctx.now_ms.saturating_add(ctx.ttl_ms.unwrap_or(self.ttl_ms));
        let expires_at_s = expires_at_ms / 1000;
        let base = ctx.public_base.trim_end_matches('/');
        log_paths
            .iter()
            .map(|p| {
                let claims = FileUrlClaims {
                    log_path: (*p).to_owned(),
                    table_key: ctx.table_key.to_owned(),
                    recipient_id: ctx.recipient_id.to_owned(),
                    expires_at_s,
                    key_id: key.id.clone(),
                };
                let sig = signature(key, &claims);
                let url = format!(
                    "{base}/files/{}/{}?t={}&r={}&exp={}&kid={}&sp=r&sig={sig}",
                    encode_path(p),
                    display_name(p),
                    claims.table_key,
                    claims.recipient_id,
                    expires_at_s,
                    claims.key_id
                );
                Ok(SignedUrl {
                    url,
                    expires_at_ms: expires_at_s * 1000,
                })
            })
            .collect()
    }
}

/// Checks a presented signature and expiry. `grace_ms` is how long a retired key stays valid.
pub fn verify(
    keyring: &KeyringRef,
    claims: &FileUrlClaims,
    presented_sig: &str,
    now_ms: i64,
    grace_ms: i64,
) -> Result<(), StorageError> {
    let denied = || StorageError::Forbidden("invalid or expired file URL signature".to_owned());
    let ring = keyring.read().map_err(|_| denied())?;
    let key = ring
        .accepted(&claims.key_id, now_ms, grace_ms)
        .ok_or_else(denied)?;
    let expected = signature(key, claims);
    if !crate::domain::token::hashes_equal(expected.as_bytes(), presented_sig.as_bytes()) {
        return Err(denied());
    }
    if now_ms >= claims.expires_at_s.saturating_mul(1000) {
        return Err(StorageError::Forbidden(
            "the file URL has expired".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::{Arc, RwLock};

    use super::*;
    use crate::storage::keyring::Keyring;
    use crate::storage::location::TableLocation;

    fn ring() -> KeyringRef {
        Arc::new(RwLock::new(Keyring::new(vec![SigningKey::generate(0)])))
    }

    #[tokio::test]
    async fn signed_url_verifies_and_tampering_fails() {
        let keyring = ring();
        let signer = LocalUrlSigner::new(keyring.clone(), 3_600_000);
        let loc =
            TableLocation::parse("/t", Path::new("/")).unwrap_or_else(|e| unreachable!("{e}"));
        let ctx = SignContext {
            location: &loc,
            table_key: "tk",
            recipient_id: "r1",
            public_base: "http://h/delta-sharing",
            now_ms: 1_000_000,
            ttl_ms: None,
        };
        let urls = signer
            .sign_batch(&ctx, &["a%20b/p.parquet"])
            .await
            .unwrap_or_default();
        assert_eq!(urls.len(), 1);
        let url = url::Url::parse(&urls[0].url).unwrap_or_else(|e| unreachable!("{e}"));
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q.get("sp").map(String::as_str), Some("r"));
        let seg = url
            .path_segments()
            .and_then(|mut s| s.nth(2))
            .unwrap_or_default();
        let claims = FileUrlClaims {
            log_path: decode_path(seg).unwrap_or_default(),
            table_key: q["t"].clone(),
            recipient_id: q["r"].clone(),
            expires_at_s: q["exp"].parse().unwrap_or_default(),
            key_id: q["kid"].clone(),
        };
        assert_eq!(claims.log_path, "a%20b/p.parquet");
        let sig = q["sig"].clone();
        assert!(verify(&keyring, &claims, &sig, 1_000_001, 0).is_ok());
        let mut other = claims.clone();
        other.recipient_id = "r2".into();
        assert!(verify(&keyring, &other, &sig, 1_000_001, 0).is_err());
        let mut later = claims.clone();
        later.expires_at_s += 10;
        assert!(verify(&keyring, &later, &sig, 1_000_001, 0).is_err());
        assert!(verify(&keyring, &claims, &sig, urls[0].expires_at_ms, 0).is_err());
    }
}
