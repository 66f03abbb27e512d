//! The application layer: the only place where authenticate → authorize → read → filter →
//! sign is put together. One module per protocol operation.
//!
//! The HTTP layer calls [`Service`] methods with wire-level inputs and gets back wire types
//! (or a streamed NDJSON body); it never reaches the catalog, the table reader or storage.

mod activation;
mod admin;
mod admin_objects;
mod async_query;
mod auth;
mod changes;
mod continuation;
mod credentials;
mod emit;
pub(crate) mod error;
mod files;
mod format;
mod listing;
mod metadata;
mod metrics;
mod page_token;
mod policy;
mod query;
mod resolve;
pub mod telemetry;
mod timestamp;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

pub use activation::ActivationLanding;
pub use auth::Identity;
pub use changes::ChangesParams;
pub use error::ServiceError;
pub use files::FileRequest;
pub use listing::ListParams;
pub use query::NdjsonResponse;
pub use resolve::TableRef;

use crate::catalog::DynCatalog;
use crate::delta::reader::TableReader;
use crate::domain::async_query::{AsyncQueryStore, InMemoryAsyncStore};
use crate::domain::clock::ClockRef;
use crate::storage::keyring::KeyringRef;
use crate::storage::signer::DynUrlSigner;
use crate::storage::temp_issuer::TempCredentialIssuer;

/// Settings the service needs (validated config).
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Lifetime of pre-signed URLs, ms.
    pub url_ttl_ms: i64,
    /// Apply JSON predicate hints on partition values.
    pub evaluate_json_hints: bool,
    /// Apply JSON predicate hints on file statistics too.
    pub evaluate_json_hints_v2: bool,
    /// Accept requests without a token (loopback development only).
    pub allow_anonymous: bool,
    /// SHA-256 of the reference-style configured bearer token.
    pub config_token_hash: Option<[u8; 32]>,
    /// Files signed per batch while streaming a query.
    pub sign_batch_size: usize,
    /// Largest page a client may ask for with `maxFiles` (`queryTablePageSizeLimit`).
    pub page_size_limit: usize,
    /// Page token lifetime, ms (`queryTablePageTokenTtlMs`).
    pub page_token_ttl_ms: i64,
    /// Refresh token lifetime, ms (`refreshTokenTtlMs`).
    pub refresh_token_ttl_ms: i64,
    /// Async queries that may run at once per recipient.
    pub async_max_concurrent_per_recipient: usize,
    /// How long async query results stay available, ms.
    pub async_result_ttl_ms: i64,
    /// Test-only delay before each async query executes, ms.
    pub async_test_delay_ms: u64,
    /// Lifetime of directory-access credentials, seconds (`temporaryCredentialValiditySeconds`).
    pub temp_credential_validity_s: i64,
    /// Global per-recipient limits (recipient properties `limit.*` override them).
    pub limits: crate::domain::limits::Limits,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            url_ttl_ms: 3_600_000,
            evaluate_json_hints: true,
            evaluate_json_hints_v2: true,
            allow_anonymous: false,
            config_token_hash: None,
            sign_batch_size: 1000,
            page_size_limit: 10_000,
            page_token_ttl_ms: 259_200_000,
            refresh_token_ttl_ms: 3_600_000,
            async_max_concurrent_per_recipient: 4,
            async_result_ttl_ms: 3_600_000,
            async_test_delay_ms: 0,
            temp_credential_validity_s: 3600,
            limits: crate::domain::limits::Limits::default(),
        }
    }
}

/// The recipient-facing application service.
#[derive(Debug, Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    async_store: Arc<dyn AsyncQueryStore>,
    async_started: AtomicU64,
    async_running: AtomicU64,
    catalog: DynCatalog,
    reader: Arc<TableReader>,
    signer: DynUrlSigner,
    keyring: KeyringRef,
    settings: ServiceSettings,
    clock: ClockRef,
    temp_credentials: Option<Arc<TempCredentialIssuer>>,
    telemetry: Arc<telemetry::Telemetry>,
    limits: Arc<crate::domain::limits::LimitTracker>,
}

impl Service {
    /// Offers directory access (temporary credentials) where `issuer`'s storage settings
    /// enable it.
    pub fn with_temp_credentials(mut self, issuer: Arc<TempCredentialIssuer>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.temp_credentials = Some(issuer);
        }
        self
    }

    /// Keeps async query state in `store` (e.g. the shared catalog) instead of in memory.
    pub fn with_async_store(mut self, store: Arc<dyn AsyncQueryStore>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.async_store = store;
        }
        self
    }

    /// Wires the service.
    pub fn new(
        catalog: DynCatalog,
        reader: Arc<TableReader>,
        signer: DynUrlSigner,
        keyring: KeyringRef,
        settings: ServiceSettings,
        clock: ClockRef,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                async_store: Arc::new(InMemoryAsyncStore::default()),
                async_started: AtomicU64::new(0),
                async_running: AtomicU64::new(0),
                catalog,
                reader,
                signer,
                keyring,
                settings,
                clock,
                temp_credentials: None,
                telemetry: Arc::new(telemetry::Telemetry::default()),
                limits: Arc::new(crate::domain::limits::LimitTracker::default()),
            }),
        }
    }

    /// The request telemetry.
    pub fn telemetry(&self) -> Arc<telemetry::Telemetry> {
        self.inner.telemetry.clone()
    }

    /// Readiness: the state store answers.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        self.inner.catalog.active_recipient_count().await?;
        Ok(())
    }

    fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// Runs blocking table-reader work off the async executor.
    async fn blocking<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&TableReader) -> Result<T, ServiceError> + Send + 'static,
    {
        let reader = self.inner.reader.clone();
        tokio::task::spawn_blocking(move || f(&reader))
            .await
            .map_err(|e| ServiceError::Internal(format!("table reader task failed: {e}")))?
    }
}
