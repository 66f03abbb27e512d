//! Shared helpers for in-process HTTP tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use lakeshare::catalog::sql::SqlCatalog;
use lakeshare::catalog::{CatalogStore, DynCatalog};
use lakeshare::delta::reader::TableReader;
use lakeshare::domain::clock::SystemClock;
use lakeshare::domain::token;
use lakeshare::server::{AppState, build_router};
use lakeshare::service::{Service, ServiceSettings};
use lakeshare::storage::keyring::{Keyring, KeyringRef, SigningKey};
use lakeshare::storage::local::LocalUrlSigner;
use lakeshare::storage::signer::{DynUrlSigner, ScopedSigner};

/// The vendored golden tables.
pub fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conformance-tests/fixtures/golden")
        .join(name)
}

/// A running in-process server.
pub struct TestServer {
    pub base: String,
    pub token: String,
    pub service: Service,
    pub _dir: tempfile::TempDir,
}

/// Starts a server over `tables` (name → location) in share `s`, schema `d`, with one
/// recipient granted `s`. `signer` overrides the local signer when given.
pub async fn start(
    tables: &[(&str, PathBuf)],
    make_signer: impl FnOnce(KeyringRef) -> DynUrlSigner,
    settings: ServiceSettings,
) -> TestServer {
    start_with_clock(tables, make_signer, settings, Arc::new(SystemClock)).await
}

/// [`start`] with an injectable clock.
pub async fn start_with_clock(
    tables: &[(&str, PathBuf)],
    make_signer: impl FnOnce(KeyringRef) -> DynUrlSigner,
    settings: ServiceSettings,
    clock: lakeshare::domain::clock::ClockRef,
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml =
        String::from("version: 1\nshares:\n- name: s\n  schemas:\n  - name: d\n    tables:\n");
    for (name, loc) in tables {
        yaml.push_str(&format!(
            "    - name: {name}\n      location: {}\n      historyShared: true\n",
            loc.display()
        ));
    }
    let config = lakeshare::config::parse(&yaml, dir.path()).unwrap();
    let catalog: DynCatalog = Arc::new(
        SqlCatalog::open(&dir.path().join("state.db").to_string_lossy())
            .await
            .unwrap(),
    );
    lakeshare::catalog::plan::reconcile_config(catalog.as_ref(), &config.shares, 0)
        .await
        .unwrap();
    let key = SigningKey::generate(0);
    catalog.rotate_signing_key(&key, 0).await.unwrap();
    let keyring: KeyringRef = Arc::new(RwLock::new(Keyring::new(
        catalog.signing_keys().await.unwrap(),
    )));
    let tok = token::generate();
    catalog
        .create_recipient(
            &lakeshare::catalog::NewRecipient {
                name: "r".to_owned(),
                shares: vec!["s".to_owned()],
                ..Default::default()
            },
            Some(&tok),
            0,
        )
        .await
        .unwrap();
    let signer = make_signer(keyring.clone());
    let service = Service::new(
        catalog,
        Arc::new(TableReader::new_local(16)),
        signer,
        keyring,
        settings,
        clock,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}/delta-sharing");
    let app = build_router(AppState {
        service: service.clone(),
        prefix: "/delta-sharing".to_owned(),
        scheme: "http",
        bound_base: base.clone(),
        trusted_proxies: Vec::new(),
        public_url: None,
        audit: None,
    });
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    TestServer {
        base,
        token: tok.secret,
        service,
        _dir: dir,
    }
}

/// The default local signer, scoped.
pub fn local_signer(keyring: KeyringRef) -> DynUrlSigner {
    Arc::new(ScopedSigner::new(LocalUrlSigner::new(keyring, 3_600_000)))
}

/// Creates another recipient in the running server's store and returns its token.
pub async fn add_recipient(
    server: &TestServer,
    name: &str,
    shares: &[&str],
    expires_at_ms: Option<i64>,
) -> String {
    let catalog = SqlCatalog::open(&server._dir.path().join("state.db").to_string_lossy())
        .await
        .unwrap();
    let tok = token::generate();
    catalog
        .create_recipient(
            &lakeshare::catalog::NewRecipient {
                name: name.to_owned(),
                shares: shares.iter().map(|s| (*s).to_owned()).collect(),
                token_expires_at_ms: expires_at_ms,
                ..Default::default()
            },
            Some(&tok),
            0,
        )
        .await
        .unwrap();
    tok.secret
}

/// Revokes a recipient in the running server's store.
pub async fn revoke(server: &TestServer, name: &str) {
    let catalog = SqlCatalog::open(&server._dir.path().join("state.db").to_string_lossy())
        .await
        .unwrap();
    assert!(catalog.revoke_recipient(name, 1).await.unwrap());
}
