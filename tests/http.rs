//! In-process HTTP tests: the route table against the OpenAPI document, and streaming
//! behaviour that the external conformance suite cannot provoke.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use lakeshare::server::ROUTES;
use lakeshare::service::ServiceSettings;
use lakeshare::storage::error::StorageError;
use lakeshare::storage::keyring::KeyringRef;
use lakeshare::storage::signer::{DynUrlSigner, SignContext, SignedUrl, UrlSigner};

fn openapi_routes() -> BTreeSet<(String, String)> {
    routes_of("protocol-spec/openapi.yaml")
}

fn routes_of(file: &str) -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
        .unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().unwrap() {
        for (method, _) in item.as_mapping().unwrap() {
            let m = method.as_str().unwrap().to_ascii_uppercase();
            if ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str()) {
                out.insert((m, path.as_str().unwrap().to_owned()));
            }
        }
    }
    out
}

#[test]
fn router_and_openapi_document_list_the_same_routes() {
    let router: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let spec = openapi_routes();
    let only_router: Vec<_> = router.difference(&spec).collect();
    let only_spec: Vec<_> = spec.difference(&router).collect();
    assert!(
        only_router.is_empty() && only_spec.is_empty(),
        "routes only in the router: {only_router:?}; only in openapi.yaml: {only_spec:?}"
    );
}

#[test]
fn every_authenticated_route_documents_its_refusals() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol-spec/openapi.yaml"),
    )
    .unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_mapping().unwrap() {
        for (method, op) in item.as_mapping().unwrap() {
            let Some(responses) = op.get("responses").and_then(|r| r.as_mapping()) else {
                continue;
            };
            let has = |code: &str| responses.contains_key(serde_yaml::Value::from(code));
            if !has("401") {
                continue;
            }
            for code in ["403", "429", "503"] {
                if !has(code) {
                    missing.push(format!("{method:?} {path:?}: {code}"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "undocumented refusals: {missing:?}");
}

#[test]
fn public_routes_match_the_admin_openapi_document() {
    let router: BTreeSet<(String, String)> = lakeshare::server::PUBLIC_ROUTES
        .iter()
        .chain(lakeshare::server::admin::ADMIN_ROUTES)
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(router, routes_of("protocol-spec/admin-openapi.yaml"));
}

#[tokio::test]
async fn every_listed_route_is_served_by_the_router() {
    let server = support::start(
        &[("plain", support::golden("plain-unpartitioned"))],
        support::local_signer,
        ServiceSettings::default(),
    )
    .await;
    let client = reqwest::Client::new();
    for (method, path) in ROUTES {
        let concrete = path
            .replace("{share}", "s")
            .replace("{schema}", "d")
            .replace("{table}", "plain")
            .replace("{file}", "eA")
            .replace("{name}", "x.parquet");
        let url = format!("{}{concrete}", server.base);
        let req = client
            .request(method.parse().unwrap(), &url)
            .bearer_auth(&server.token)
            .body("{}");
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path} is not routed");
        assert!(
            !body.contains("no such endpoint"),
            "{method} {path} fell through to the fallback"
        );
    }
}

/// Signs the first batch and fails every later one.
#[derive(Debug)]
struct FailingAfterFirst {
    inner: DynUrlSigner,
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl UrlSigner for FailingAfterFirst {
    async fn sign_batch(
        &self,
        ctx: &SignContext<'_>,
        log_paths: &[&str],
    ) -> Result<Vec<SignedUrl>, StorageError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= 1 {
            return Err(StorageError::NoSigningKey);
        }
        self.inner.sign_batch(ctx, log_paths).await
    }
}

#[tokio::test]
async fn a_failure_after_the_first_line_aborts_the_body_instead_of_truncating_it() {
    let server = support::start(
        &[("plain", support::golden("plain-unpartitioned"))],
        |ring: KeyringRef| -> DynUrlSigner {
            Arc::new(FailingAfterFirst {
                inner: support::local_signer(ring),
                calls: AtomicUsize::new(0),
            })
        },
        ServiceSettings {
            sign_batch_size: 1,
            ..ServiceSettings::default()
        },
    )
    .await;
    // hyper may flush the headers before the failing batch or fold them into the same write;
    // either way the client must end with a transport error, never with a complete body.
    let outcome = match reqwest::Client::new()
        .post(format!(
            "{}/shares/s/schemas/d/tables/plain/query",
            server.base
        ))
        .bearer_auth(&server.token)
        .body("{}")
        .send()
        .await
    {
        Ok(resp) => {
            assert_eq!(
                resp.status(),
                200,
                "the status is committed before the failure"
            );
            resp.bytes()
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        }
        Err(e) => Err(e),
    };
    assert!(
        outcome.is_err(),
        "the client must see a failed transfer, got a complete body: {outcome:?}"
    );
}

#[tokio::test]
async fn the_same_query_without_failures_completes() {
    let server = support::start(
        &[("plain", support::golden("plain-unpartitioned"))],
        support::local_signer,
        ServiceSettings {
            sign_batch_size: 1,
            ..ServiceSettings::default()
        },
    )
    .await;
    let body = reqwest::Client::new()
        .post(format!(
            "{}/shares/s/schemas/d/tables/plain/query",
            server.base
        ))
        .bearer_auth(&server.token)
        .body("{}")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 4, "protocol, metaData and two files: {body}");
    assert!(lines[2].starts_with("{\"file\":"));
}
