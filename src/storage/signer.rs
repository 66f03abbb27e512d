//! The one signing abstraction: [`UrlSigner`], with one implementation per store, always used
//! through [`ScopedSigner`], which refuses any path outside the table root.

use std::fmt::Debug;

use async_trait::async_trait;
use std::sync::Arc;

use super::error::StorageError;
use super::location::TableLocation;

/// What a signer needs to know about the request it signs for.
#[derive(Debug, Clone, Copy)]
pub struct SignContext<'a> {
    /// The table root.
    pub location: &'a TableLocation,
    /// Stable table key (bound into Lakeshare-signed URLs).
    pub table_key: &'a str,
    /// Recipient the URL is issued to (bound into Lakeshare-signed URLs).
    pub recipient_id: &'a str,
    /// Public base URL of this server's endpoint (for Lakeshare-served files).
    pub public_base: &'a str,
    /// Signing time, ms.
    pub now_ms: i64,
    /// URL lifetime for this table (ms), overriding the signer's default (per-share setting).
    pub ttl_ms: Option<i64>,
}

/// A signed URL and its real expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUrl {
    /// The URL.
    pub url: String,
    /// Expiry, ms since the epoch.
    pub expires_at_ms: i64,
}

/// Turns log paths into short-lived URLs. Implementations must fail rather than return an
/// unsigned URL, and must sign every item or fail as a whole.
#[async_trait]
pub trait UrlSigner: Send + Sync + Debug {
    /// Signs `log_paths` (as written in the Delta log) for `ctx`. The result has one URL per
    /// path, in order.
    async fn sign_batch(
        &self,
        ctx: &SignContext<'_>,
        log_paths: &[&str],
    ) -> Result<Vec<SignedUrl>, StorageError>;
}

/// Shared signer handle.
pub type DynUrlSigner = Arc<dyn UrlSigner>;

/// Wraps a signer and refuses any path that does not resolve under the table root.
#[derive(Debug, Clone)]
pub struct ScopedSigner<S> {
    inner: S,
}

impl<S> ScopedSigner<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl<S: UrlSigner> UrlSigner for ScopedSigner<S> {
    async fn sign_batch(
        &self,
        ctx: &SignContext<'_>,
        log_paths: &[&str],
    ) -> Result<Vec<SignedUrl>, StorageError> {
        for p in log_paths {
            ctx.location.resolve(p)?;
        }
        let urls = self.inner.sign_batch(ctx, log_paths).await?;
        if urls.len() != log_paths.len() {
            return Err(StorageError::InvalidLocation(
                "signer returned a different number of URLs".to_owned(),
            ));
        }
        Ok(urls)
    }
}
