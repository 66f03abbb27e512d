//! The storage self-test (`lakeshare check-config`, and `serve` at start unless
//! `storageSelfTest: false`): open each cloud table's log, and per storage location sign one
//! URL and fetch it with the method it was signed for (GET, limited to its first byte by
//! `Range: bytes=0-0`), so that a wrong credential is named before recipients see it. Real S3
//! and GCS bind a pre-signed URL to its HTTP method: a HEAD on a GET URL is refused.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::delta::reader::TableReader;
use crate::storage::cloud::StoreRegistry;
use crate::storage::location::{StoreKind, TableLocation};
use crate::storage::object_signer::ObjectStoreUrlSigner;
use crate::storage::signer::{SignContext, UrlSigner};

/// One table to check: its qualified name and root.
#[derive(Debug, Clone)]
pub struct TableToCheck {
    /// `share.schema.table`.
    pub name: String,
    /// Root URL.
    pub location: String,
}

/// Checks the cloud tables; returns one readable problem per failure (empty = all good).
pub async fn check_cloud_tables(
    tables: &[TableToCheck],
    stores: Arc<StoreRegistry>,
    reader: Arc<TableReader>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut signed_for: BTreeSet<String> = BTreeSet::new();
    let http = reqwest::Client::new();
    for t in tables {
        let Ok(url) = url::Url::parse(&t.location) else {
            problems.push(format!("{}: invalid location {}", t.name, t.location));
            continue;
        };
        let Ok(location) = TableLocation::from_url(url.clone()) else {
            continue;
        };
        if location.kind() == StoreKind::Local {
            continue;
        }
        let storage = stores.rule_for(&url).map_or_else(
            || "environment credentials".to_owned(),
            |r| format!("storage '{}'", r.prefix),
        );
        let r = reader.clone();
        let u = url.clone();
        let opened = tokio::task::spawn_blocking(move || r.latest(&u).map(|s| s.version())).await;
        let version = match opened {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                problems.push(format!(
                    "{}: cannot read the Delta log at {} with {storage}: {e}",
                    t.name, t.location
                ));
                continue;
            }
            Err(e) => {
                problems.push(format!("{}: check failed: {e}", t.name));
                continue;
            }
        };
        // One signed URL per storage location (settings + bucket or container).
        let key = format!(
            "{storage}|{}://{}@{}",
            url.scheme(),
            url.username(),
            url.host_str().unwrap_or_default()
        );
        if !signed_for.insert(key) {
            continue;
        }
        let signer = ObjectStoreUrlSigner::new(stores.clone(), 60_000);
        let path = format!("_delta_log/{version:020}.json");
        let ctx = SignContext {
            location: &location,
            table_key: &t.name,
            recipient_id: "self-test",
            public_base: "",
            now_ms: chrono::Utc::now().timestamp_millis(),
            ttl_ms: None,
        };
        match signer.sign_batch(&ctx, &[path.as_str()]).await {
            Err(e) => problems.push(format!(
                "{}: cannot sign a URL under {} with {storage}: {e}",
                t.name, t.location
            )),
            Ok(urls) => match http
                .get(&urls[0].url)
                .header(reqwest::header::RANGE, "bytes=0-0")
                .send()
                .await
            {
                Ok(resp) if resp.status().is_success() => {}
                Ok(resp) => problems.push(format!(
                    "{}: the store refused a URL signed with {storage} (HTTP {}): check that \
                     credential",
                    t.name,
                    resp.status().as_u16()
                )),
                Err(e) => problems.push(format!(
                    "{}: cannot fetch a URL signed with {storage}: {e}",
                    t.name
                )),
            },
        }
    }
    problems
}
