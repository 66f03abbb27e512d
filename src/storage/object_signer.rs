//! [`UrlSigner`] for tables in S3, Azure and GCS: each store's own pre-signed URLs (SigV4,
//! service or user-delegation SAS, V4 RSA) made by `object_store`'s `Signer`, for GET only,
//! with the configured lifetime. Recipients fetch the objects straight from the store.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use object_store::path::Path;
use object_store::signer::Method;

use super::cloud::StoreRegistry;
use super::error::StorageError;
use super::location::StoreKind;
use super::signer::{SignContext, SignedUrl, UrlSigner};

/// Query parameters that carry the signature, per store; a URL without it is never returned.
fn signature_param(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::S3 => "X-Amz-Signature",
        StoreKind::Gcs => "X-Goog-Signature",
        StoreKind::Azure | StoreKind::Local => "sig",
    }
}

/// Signs objects of cloud tables through the store registry.
#[derive(Debug, Clone)]
pub struct ObjectStoreUrlSigner {
    registry: Arc<StoreRegistry>,
    ttl_ms: i64,
}

impl ObjectStoreUrlSigner {
    /// Signs URLs valid for `ttl_ms`.
    pub fn new(registry: Arc<StoreRegistry>, ttl_ms: i64) -> Self {
        Self { registry, ttl_ms }
    }
}

#[async_trait]
impl UrlSigner for ObjectStoreUrlSigner {
    async fn sign_batch(
        &self,
        ctx: &SignContext<'_>,
        log_paths: &[&str],
    ) -> Result<Vec<SignedUrl>, StorageError> {
        let kind = ctx.location.kind();
        let store = self.registry.store_for(ctx.location.url())?;
        let paths = log_paths
            .iter()
            .map(|p| {
                let url = ctx.location.resolve(p)?;
                let path = match kind {
                    // object_store's GCS signer puts the path into the URL as is: hand it the
                    // URL-encoded form so that object names with `%`, spaces or `#` survive.
                    StoreKind::Gcs => Path::parse(url.path()),
                    _ => Path::from_url_path(url.path()),
                };
                path.map_err(|e| StorageError::InvalidLocation(format!("'{p}': {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ttl_ms = ctx.ttl_ms.unwrap_or(self.ttl_ms).max(1000);
        let ttl = Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(1000));
        // Stores sign with whole seconds: announce the expiry rounded down, never later than
        // the store will honour it.
        let exact = ctx.now_ms.saturating_add(ttl_ms);
        let expires_at_ms = exact - exact.rem_euclid(1000);
        let mut urls = store
            .signer
            .signed_urls(Method::GET, &paths, ttl)
            .await
            .map_err(|e| StorageError::Unavailable(format!("signing failed: {e}")))?;
        if kind == StoreKind::Azure {
            azure_blob_sas(
                &mut urls,
                store.azure_shared_key.as_ref(),
                ctx,
                expires_at_ms,
            )?;
        }
        // A URL dies with the credential that signed it: never announce a later expiry.
        let expires_at_ms = match &store.credential_expiry_ms {
            Some(cred) => match cred.load(std::sync::atomic::Ordering::Relaxed) {
                0 => expires_at_ms,
                c => expires_at_ms.min(c - c.rem_euclid(1000)),
            },
            None => expires_at_ms,
        };
        let param = signature_param(kind);
        urls.into_iter()
            .map(|u| {
                if !u.query_pairs().any(|(k, v)| k == param && !v.is_empty()) {
                    return Err(StorageError::Unavailable(
                        "the store returned a URL without a signature".to_owned(),
                    ));
                }
                Ok(SignedUrl {
                    url: u.to_string(),
                    expires_at_ms,
                })
            })
            .collect()
    }
}

/// Azure signs a SAS over the blob's real (decoded) name; `object_store` signs over the URL's
/// percent-encoded path, which Azure refuses for every name that needs escaping (Spark's
/// escaped partition folders, spaces, non-ASCII). With the account key Lakeshare replaces the
/// query by its own blob SAS (`sr=b`, `sp=r`) over the decoded name; with any other credential
/// (user-delegation SAS) such names are refused rather than handed out broken.
fn azure_blob_sas(
    urls: &mut [url::Url],
    shared_key: Option<&super::cloud::AzureSharedKey>,
    ctx: &SignContext<'_>,
    expires_at_ms: i64,
) -> Result<(), StorageError> {
    use super::azure_sas::{ServiceSas, blob_canonical_resource, sas_time};
    let Some(k) = shared_key else {
        if let Some(u) = urls.iter().find(|u| {
            percent_encoding::percent_decode_str(u.path()).decode_utf8_lossy() != u.path()
        }) {
            return Err(StorageError::Unsupported(format!(
                "the object '{}' has a name that needs escaping; Azure user-delegation SAS URLs \
                 for such names cannot be signed: configure the account key ('accessKey')",
                u.path()
            )));
        }
        return Ok(());
    };
    // Five minutes of clock skew, as for directory SAS.
    let start = sas_time(ctx.now_ms.saturating_sub(300_000));
    let expiry = sas_time(expires_at_ms);
    for u in urls.iter_mut() {
        let protocol = if u.scheme() == "https" { "https" } else { "" };
        let sas = ServiceSas {
            permissions: "r",
            start: &start,
            expiry: &expiry,
            canonical_resource: blob_canonical_resource(u, &k.account)?,
            protocol,
            resource: "b",
            directory_depth: None,
        };
        let token = sas.token(&k.key)?;
        u.set_query(Some(&token));
    }
    Ok(())
}

/// Sends each table to its store's signer: Lakeshare's own for local tables, the object
/// store's for cloud tables. Both are wrapped in [`super::signer::ScopedSigner`] by the caller.
#[derive(Debug, Clone)]
pub struct RoutingSigner<L, C> {
    local: L,
    cloud: C,
}

impl<L, C> RoutingSigner<L, C> {
    /// Routes between `local` and `cloud`.
    pub fn new(local: L, cloud: C) -> Self {
        Self { local, cloud }
    }
}

#[async_trait]
impl<L: UrlSigner, C: UrlSigner> UrlSigner for RoutingSigner<L, C> {
    async fn sign_batch(
        &self,
        ctx: &SignContext<'_>,
        log_paths: &[&str],
    ) -> Result<Vec<SignedUrl>, StorageError> {
        match ctx.location.kind() {
            StoreKind::Local => self.local.sign_batch(ctx, log_paths).await,
            _ => self.cloud.sign_batch(ctx, log_paths).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::cloud::StorageRule;
    use crate::storage::location::TableLocation;

    #[tokio::test]
    async fn s3_urls_are_signed_scoped_and_expire_as_announced() {
        let registry = Arc::new(StoreRegistry::new(vec![StorageRule {
            assume_role: None,
            directory: None,
            prefix: "s3://bucket/".to_owned(),
            kind: StoreKind::S3,
            options: vec![
                ("aws_region".into(), "us-east-1".into()),
                ("aws_access_key_id".into(), "AKIDEXAMPLE".into()),
                ("aws_secret_access_key".into(), "SECRET".into()),
                ("aws_endpoint".into(), "http://127.0.0.1:9".into()),
                ("aws_virtual_hosted_style_request".into(), "false".into()),
                ("allow_http".into(), "true".into()),
            ],
        }]));
        let signer = ObjectStoreUrlSigner::new(registry, 900_000);
        let loc = TableLocation::parse("s3://bucket/tables/t1", std::path::Path::new("/"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let ctx = SignContext {
            location: &loc,
            table_key: "t",
            recipient_id: "r",
            public_base: "http://unused",
            now_ms: 1_000,
            ttl_ms: None,
        };
        let urls = signer
            .sign_batch(&ctx, &["country=FR/part%201.parquet"])
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(urls[0].expires_at_ms, 901_000);
        let ctx2 = SignContext {
            now_ms: 1_500,
            ..ctx
        };
        let later = signer
            .sign_batch(&ctx2, &["a.parquet"])
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            later[0].expires_at_ms, 901_000,
            "whole seconds, rounded down"
        );
        let u = url::Url::parse(&urls[0].url).unwrap_or_else(|e| unreachable!("{e}"));
        // Path segments are URI-encoded as SigV4 canonicalizes them.
        assert_eq!(u.path(), "/bucket/tables/t1/country%3DFR/part%201.parquet");
        let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(q.get("X-Amz-Expires").map(String::as_str), Some("900"));
        assert!(
            q.get("X-Amz-Credential")
                .is_some_and(|c| c.starts_with("AKIDEXAMPLE/"))
        );
        assert!(q.contains_key("X-Amz-Signature"));
        assert!(!urls[0].url.contains("SECRET"));
    }
}
